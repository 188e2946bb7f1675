package drift

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestEventsConform(t *testing.T) { eventtest.Conformance(t, "Drift", Events()) }

func TestDecide(t *testing.T) {
	detect := func(f func(*Detect)) Detect {
		c := Detect{StackID: "stk_1", RunID: "run_1", Commit: "abc", Resources: []string{"null_resource.a"}, Actor: "wkr_1", At: at}
		f(&c)
		return c
	}
	detected := DriftDetected{StackID: "stk_1", RunID: "run_1", Commit: "abc", Resources: []string{"null_resource.a"}, At: at, Actor: "wkr_1"}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   error
	}{
		{"detect", nil, detect(func(*Detect) {}), []Event{detected}, nil},
		{"detect with a reconcile run", nil, detect(func(c *Detect) { c.ReconcileRunID = "run_2" }),
			[]Event{DriftDetected{StackID: "stk_1", RunID: "run_1", Commit: "abc", Resources: []string{"null_resource.a"}, ReconcileRunID: "run_2", At: at, Actor: "wkr_1"}}, nil},
		{"detect without addresses", nil, detect(func(c *Detect) { c.Resources = nil }),
			[]Event{DriftDetected{StackID: "stk_1", RunID: "run_1", Commit: "abc", Resources: []string{}, At: at, Actor: "wkr_1"}}, nil},
		{"the same run again is nothing", []Event{detected}, detect(func(*Detect) {}), nil, nil},
		{"another stack's record", []Event{detected}, detect(func(c *Detect) { c.StackID, c.RunID = "stk_2", "run_2" }), nil, domain.ErrInvalid},
		{"bad run id", nil, detect(func(c *Detect) { c.RunID = "x" }), nil, domain.ErrInvalid},
		{"blank address", nil, detect(func(c *Detect) { c.Resources = []string{" "} }), nil, domain.ErrInvalid},
		{"unknown command", nil, nil, nil, domain.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, e := range tc.given {
				s.Apply(e)
			}
			got, err := Decide(s, tc.cmd)
			if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
		})
	}
	var s State
	s.Apply(&detected)
	if s.Detections() != 1 || s.LastRunID() != "run_1" || s.StackID() != "stk_1" || len(s.LastResources()) != 1 || !s.LastAt().Equal(at) {
		t.Errorf("state: %+v", s)
	}
}
