// Package drift is the drift record of one stack: every drift-detection
// run whose plan found changes is a DriftDetected event here, with the
// addresses of the resources that drifted and, when the stack's drift
// schedule reconciles, the TRACKED run queued to bring them back.
package drift

import (
	"fmt"
	"slices"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// MaxResources bounds the addresses one detection records.
const MaxResources = 10000

// MaxAddressLength bounds one resource address.
const MaxAddressLength = 1024

// StreamID is the stream of a stack's drift record.
func StreamID(stackID string) string { return "drift_" + stackID }

// State is a stack's drift record; the zero value has no detection.
type State struct {
	stackID       string
	detections    int
	lastRunID     string
	lastResources []string
	lastAt        time.Time
}

// StackID is the stack of the record.
func (s State) StackID() string { return s.stackID }

// Detections counts the detections recorded.
func (s State) Detections() int { return s.detections }

// LastRunID is the drift run of the last detection.
func (s State) LastRunID() string { return s.lastRunID }

// LastResources are the addresses of the last detection.
func (s State) LastResources() []string { return slices.Clone(s.lastResources) }

// LastAt is when drift was last detected.
func (s State) LastAt() time.Time { return s.lastAt }

// Command is a request to change a drift record.
type Command interface{ isCommand() }

// Detect records that drift run RunID found changes to Resources. A run
// recorded already changes nothing.
type Detect struct {
	StackID        string
	RunID          string
	Commit         string
	Resources      []string
	ReconcileRunID string // the TRACKED run queued to reconcile, if any
	Actor          string
	At             time.Time
}

func (Detect) isCommand() {}

// Event is a fact about a stack's drift; all events are schema version 1.
type Event interface{ EventType() string }

// DriftDetected: a drift-detection run's plan found changes.
type DriftDetected struct {
	StackID        string    `json:"stack_id"`
	RunID          string    `json:"run_id"`
	Commit         string    `json:"commit"`
	Resources      []string  `json:"resources"`
	ReconcileRunID string    `json:"reconcile_run_id,omitempty"`
	At             time.Time `json:"at"`
	Actor          string    `json:"actor"`
}

// EventType is the stable name of the event.
func (DriftDetected) EventType() string { return "DriftDetected" }

// Events returns a zero value of every drift event type.
func Events() []Event { return []Event{DriftDetected{}} }

// Apply folds e into s.
func (s *State) Apply(e Event) {
	if e, ok := domain.Deref(e).(DriftDetected); ok {
		s.stackID, s.detections, s.lastRunID, s.lastResources, s.lastAt = e.StackID, s.detections+1, e.RunID, slices.Clone(e.Resources), e.At
	}
}

// Decide returns the events c causes on s, or why it is refused.
func Decide(s State, c Command) ([]Event, error) {
	d, ok := domain.Deref(c).(Detect)
	if !ok {
		return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown drift command %T", c)}
	}
	var p domain.Problems
	p.Check(ids.Stack.Validate("stack_id", d.StackID))
	p.Check(ids.Run.Validate("run_id", d.RunID))
	if d.ReconcileRunID != "" {
		p.Check(ids.Run.Validate("reconcile_run_id", d.ReconcileRunID))
	}
	if s.stackID != "" && s.stackID != d.StackID {
		p.Add("stack_id", "belongs to another stack's record")
	}
	if len(d.Resources) > MaxResources {
		p.Addf("resources", "at most %d addresses", MaxResources)
	}
	for _, r := range d.Resources {
		p.CheckText("resources", r, MaxAddressLength, true)
	}
	p.CheckOrigin(d.Actor, d.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.lastRunID == d.RunID {
		return nil, nil
	}
	resources := slices.Clone(d.Resources)
	if resources == nil {
		resources = []string{}
	}
	return []Event{DriftDetected{StackID: d.StackID, RunID: d.RunID, Commit: d.Commit, Resources: resources,
		ReconcileRunID: d.ReconcileRunID, At: d.At, Actor: d.Actor}}, nil
}
