package run

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gantryhq/gantry/domain"
)

// Limits on a run's outputs: what `<tool> output -json` gives after the
// run's apply or task, recorded in one event.
const (
	MaxOutputs          = 500
	MaxOutputNameLength = 256
	// MaxOutputsSize bounds the names, types and values (sealed or not)
	// of one run's outputs together.
	MaxOutputsSize = 256 << 10
)

// Output is one of a run's outputs. A sensitive output's value is never in
// the clear: it is in Sealed, sealed to the server's outputs key, when the
// worker uploads sensitive outputs, and absent otherwise.
type Output struct {
	Name      string          `json:"name"`
	Sensitive bool            `json:"sensitive,omitempty"`
	Type      json.RawMessage `json:"type,omitempty"`  // terraform's type constraint, as JSON
	Value     json.RawMessage `json:"value,omitempty"` // non-sensitive outputs: the value as JSON
	Sealed    []byte          `json:"sealed,omitempty"`
}

// RecordOutputs records the outputs of the run's APPLYING or PERFORMING
// phase, before that phase's result: once per run.
type RecordOutputs struct {
	Outputs []Output
	Actor   string
	At      time.Time
}

func (RecordOutputs) isCommand() {}

// RunOutputsRecorded: the worker reported the run's outputs after its
// apply (or task).
type RunOutputsRecorded struct {
	Outputs []Output  `json:"outputs"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

func (RunOutputsRecorded) EventType() string { return "RunOutputsRecorded" }

// Outputs are the outputs recorded for the run, nil if none were.
func (s State) Outputs() []Output { return slices.Clone(s.outputs) }

func (s State) recordOutputs(c RecordOutputs) ([]Event, error) {
	const cmd = "RecordOutputs"
	if err := s.precheck(cmd, c.Actor, c.At, checkOutputs(c.Outputs)); err != nil {
		return nil, err
	}
	switch {
	case !s.in(Applying, Performing):
		return nil, s.illegal(cmd, "")
	case s.phaseDone:
		return nil, s.illegal(cmd, "the phase already reported its result")
	case s.outputsRecorded:
		return nil, s.illegal(cmd, "the outputs are already recorded")
	}
	return []Event{RunOutputsRecorded{Outputs: slices.Clone(c.Outputs), At: c.At, Actor: c.Actor}}, nil
}

// checkOutputs validates a run's outputs: named once each, a value in
// JSON for each non-sensitive one, none in the clear for a sensitive one.
func checkOutputs(outputs []Output) domain.Problems {
	var p domain.Problems
	if len(outputs) == 0 {
		p.Add("outputs", "must not be empty")
	}
	if len(outputs) > MaxOutputs {
		p.Addf("outputs", "at most %d", MaxOutputs)
	}
	seen := map[string]bool{}
	size := 0
	for i, o := range outputs {
		field := fmt.Sprintf("outputs[%d]", i)
		p.CheckText(field+".name", o.Name, MaxOutputNameLength, true)
		if seen[o.Name] {
			p.Addf(field+".name", "%q is given twice", o.Name)
		}
		seen[o.Name] = true
		if len(o.Type) > 0 && !json.Valid(o.Type) {
			p.Add(field+".type", "is not JSON")
		}
		switch {
		case o.Sensitive && len(o.Value) > 0:
			p.Add(field+".value", "a sensitive output's value is never recorded in the clear")
		case !o.Sensitive && len(o.Sealed) > 0:
			p.Add(field+".sealed", "only sensitive outputs are sealed")
		case !o.Sensitive && !json.Valid(o.Value):
			p.Add(field+".value", "must be a JSON value")
		}
		size += len(o.Name) + len(o.Type) + len(o.Value) + len(o.Sealed)
	}
	if size > MaxOutputsSize {
		p.Addf("outputs", "%d bytes: at most %d", size, MaxOutputsSize)
	}
	return p
}
