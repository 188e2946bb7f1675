package run

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain"
)

func TestRecordOutputs(t *testing.T) {
	plain := Output{Name: "id", Type: json.RawMessage(`"string"`), Value: json.RawMessage(`"i-1"`)}
	sealed := Output{Name: "password", Sensitive: true, Type: json.RawMessage(`"string"`), Sealed: []byte("sealed bytes")}
	withheld := Output{Name: "token", Sensitive: true}
	record := func(outputs ...Output) RecordOutputs {
		return RecordOutputs{Outputs: outputs, Actor: worker, At: at(12)}
	}
	applied := join(hApplying, []Event{phaseDone(PhaseApplying, 12, false)})
	recorded := join(hApplying, []Event{RunOutputsRecorded{Outputs: []Output{plain}, At: at(12), Actor: worker}})
	big := Output{Name: "blob", Value: json.RawMessage(`"` + strings.Repeat("x", MaxOutputsSize) + `"`)}
	many := make([]Output, MaxOutputs+1)
	for i := range many {
		many[i] = Output{Name: fmt.Sprintf("o%d", i), Value: json.RawMessage(`1`)}
	}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   *wantErr
	}{
		{"after an apply", hApplying, record(plain, sealed, withheld),
			[]Event{RunOutputsRecorded{Outputs: []Output{plain, sealed, withheld}, At: at(12), Actor: worker}}, nil},
		{"after a task", hPerforming, record(plain), []Event{RunOutputsRecorded{Outputs: []Output{plain}, At: at(12), Actor: worker}}, nil},
		{"none", hApplying, record(), nil, invalid("outputs")},
		{"a name twice", hApplying, record(plain, plain), nil, invalid("outputs[1].name")},
		{"no name", hApplying, record(Output{Value: json.RawMessage(`1`)}), nil, invalid("outputs[0].name")},
		{"a sensitive value in the clear", hApplying, record(Output{Name: "p", Sensitive: true, Value: json.RawMessage(`"x"`)}), nil, invalid("outputs[0].value")},
		{"a plain value sealed", hApplying, record(Output{Name: "p", Value: json.RawMessage(`"x"`), Sealed: []byte("s")}), nil, invalid("outputs[0].sealed")},
		{"a value that is not JSON", hApplying, record(Output{Name: "p", Value: json.RawMessage(`{`)}), nil, invalid("outputs[0].value")},
		{"no value", hApplying, record(Output{Name: "p"}), nil, invalid("outputs[0].value")},
		{"a type that is not JSON", hApplying, record(Output{Name: "p", Type: json.RawMessage(`[`), Value: json.RawMessage(`1`)}), nil, invalid("outputs[0].type")},
		{"too large", hApplying, record(big), nil, invalid("outputs")},
		{"too many", hApplying, record(many...), nil, invalid("outputs")},
		{"after the phase's result", applied, record(plain), nil, illegal(Applying, "the phase already reported its result")},
		{"twice", recorded, record(plain), nil, illegal(Applying, "the outputs are already recorded")},
		{"while planning", hPlanning, record(plain), nil, illegal(Planning, "")},
		{"without actor", hApplying, RecordOutputs{Outputs: []Output{plain}, At: at(12)}, nil, invalid("actor")},
		{"missing run", nil, record(plain), nil, &wantErr{is: domain.ErrNotFound}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events, err := decide(t, given(tc.given...), tc.cmd)
			checkErr(t, err, tc.err)
			if !reflect.DeepEqual(events, tc.want) {
				t.Errorf("events %#v, want %#v", events, tc.want)
			}
		})
	}
}

func TestApplyOutputs(t *testing.T) {
	out := []Output{{Name: "id", Value: json.RawMessage(`"i-1"`)}, {Name: "password", Sensitive: true}}
	s := given(join(hApplying, []Event{RunOutputsRecorded{Outputs: out, At: at(12), Actor: worker}})...)
	if !reflect.DeepEqual(s.Outputs(), out) {
		t.Errorf("outputs %v, want %v", s.Outputs(), out)
	}
	got := s.Outputs()
	got[0].Name = "changed"
	if s.Outputs()[0].Name != "id" {
		t.Error("Outputs() exposes the state's slice")
	}
	if given(hApplying...).Outputs() != nil {
		t.Error("a run without recorded outputs has some")
	}
}
