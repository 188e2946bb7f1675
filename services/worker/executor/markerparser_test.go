package executor

import (
	"strings"
	"testing"
)

// TestMarkerParser: a command's output ends at NUL, nonce, space, status,
// newline, however the container's output is cut into writes; any other
// NUL is output.
func TestMarkerParser(t *testing.T) {
	const nonce = "N0NCE"
	for _, tc := range []struct {
		name   string
		writes []string
		out    []string // the output of each command, in order
		codes  []int
	}{
		{"one write", []string{"hello\n\x00N0NCE 0\n"}, []string{"hello\n"}, []int{0}},
		{"no newline before", []string{"partial\x00N0NCE 130\n"}, []string{"partial"}, []int{130}},
		{"cut everywhere", []string{"ab", "c\x00", "N0", "NCE", " 1", "2", "\nnext\x00N0NCE 3\n"}, []string{"abc", "next"}, []int{12, 3}},
		{"NUL in output", []string{"a\x00b\x00N0NCX 1\n\x00N0NCE 0\n"}, []string{"a\x00b\x00N0NCX 1\n"}, []int{0}},
		{"not a status", []string{"\x00N0NCE x\n\x00N0NCE 12345\n\x00N0NCE 1\n"}, []string{"\x00N0NCE x\n\x00N0NCE 12345\n"}, []int{1}},
	} {
		var out []string
		var cur strings.Builder
		var codes []int
		p := &markerParser{marker: []byte("\x00" + nonce + " "),
			out: func(b []byte) { cur.Write(b) },
			end: func(code int) { out = append(out, cur.String()); cur.Reset(); codes = append(codes, code) }}
		for _, w := range tc.writes {
			if n, err := p.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
		}
		if strings.Join(out, "|") != strings.Join(tc.out, "|") || len(codes) != len(tc.codes) {
			t.Errorf("%s: outputs %q codes %v, want %q %v", tc.name, out, codes, tc.out, tc.codes)
			continue
		}
		for i := range codes {
			if codes[i] != tc.codes[i] {
				t.Errorf("%s: codes %v, want %v", tc.name, codes, tc.codes)
			}
		}
	}
}
