package statebackend

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseState compares parseState, which reads the header from the top
// level of a validated document, with a plain encoding/json reading of the
// same members.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{
		`{"version":4,"serial":1,"lineage":"x"}`,
		`{"version":4,"serial":1,"lineage":"x","resources":[{"a":"}]\"{"}],"serial":2}`,
		` { "lineage" : "a\"b" , "version" : 3 , "serial" : 0 } `,
		`{"ser\u0069al":7,"version":4,"lineage":"l","x":{"serial":9}}`,
		`{"version":4,"serial":-1,"lineage":"x"}`,
		`{"version":4,"serial":1.5,"lineage":"x"}`,
		`{"version":"4","serial":1,"lineage":"x"}`,
		`[{"version":4}]`, `"s"`, `12`, `null`, `{}`, `{"version":4,"serial":1,"lineage":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseState(data)
		want, wantOK := reference(data)
		if (err == nil) != wantOK {
			t.Fatalf("parseState(%q) = %v; reference accepts: %v", data, err, wantOK)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("error %v is not ErrInvalidState", err)
			}
			return
		}
		if got.serial != want.serial || got.lineage != want.lineage {
			t.Fatalf("parseState(%q) = serial %d lineage %q, want %d %q", data, got.serial, got.lineage, want.serial, want.lineage)
		}
	})
}

func reference(data []byte) (stateFile, bool) {
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil || members == nil {
		return stateFile{}, false
	}
	var (
		version int64
		f       stateFile
	)
	for name, into := range map[string]any{"version": &version, "serial": &f.serial, "lineage": &f.lineage} {
		raw, ok := members[name]
		if !ok || json.Unmarshal(raw, into) != nil {
			return stateFile{}, false
		}
	}
	return f, version >= 1 && f.lineage != "" && len(f.lineage) <= 256
}
