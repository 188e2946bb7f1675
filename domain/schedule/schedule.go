// Package schedule is the cron schedule aggregate: a stack's drift
// detection, or a tracked run or task, queued on a cron expression. The
// scheduler fires each tick once: Fire records the tick, and a second
// scheduler deciding the same tick on the same version loses the append and
// then finds it fired. A tick missed while no scheduler ran is fired once,
// as the latest due tick, never once per missed tick: the caller computes
// that tick (the domain parses no cron), the aggregate refuses any tick not
// after the last one fired.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
)

// Kind is what a schedule queues.
type Kind string

// Schedule kinds.
const (
	Drift   Kind = "DRIFT"   // a PROPOSED drift-detection run (and a TRACKED one after drift, with Reconcile)
	Tracked Kind = "TRACKED" // a TRACKED run
	Task    Kind = "TASK"    // a TASK running TaskCommand
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == Drift || k == Tracked || k == Task }

// DriftID is the id of a stack's drift-detection schedule: one per stack.
func DriftID(stackID string) string { return string(ids.Schedule) + "_drift_" + stackID }

// MaxCronLength bounds a cron expression.
const MaxCronLength = 200

// State is a schedule as its events made it; the zero value does not exist.
type State struct {
	id          string
	stackID     string
	kind        Kind
	cron        string
	reconcile   bool
	taskCommand string
	since       time.Time // ticks before this are not due: the cron took effect then
	lastTick    time.Time
	lastRunID   string
	deleted     bool
	updatedAt   time.Time
}

// Exists reports whether the schedule was set and not deleted.
func (s State) Exists() bool { return s.id != "" && !s.deleted }

// ID is the schedule id ("sch_…").
func (s State) ID() string { return s.id }

// StackID is the stack whose runs the schedule queues.
func (s State) StackID() string { return s.stackID }

// Kind is what the schedule queues.
func (s State) Kind() Kind { return s.kind }

// Cron is the schedule's cron expression.
func (s State) Cron() string { return s.cron }

// Reconcile reports whether a drift schedule queues a TRACKED run after drift.
func (s State) Reconcile() bool { return s.reconcile }

// TaskCommand is the command of a TASK schedule.
func (s State) TaskCommand() string { return s.taskCommand }

// Since is when the current cron expression took effect.
func (s State) Since() time.Time { return s.since }

// LastTick is the tick fired last; zero if none.
func (s State) LastTick() time.Time { return s.lastTick }

// LastRunID is the run of the last tick.
func (s State) LastRunID() string { return s.lastRunID }

// Command is a request to change a schedule.
type Command interface{ isCommand() }

// Set creates or changes a schedule. The kind and stack are fixed at creation.
type Set struct {
	ScheduleID  string
	StackID     string
	Kind        Kind
	Cron        string // already parsed by the caller
	Reconcile   bool   // DRIFT only
	TaskCommand string // TASK only
	Actor       string
	At          time.Time
}

// Delete removes a schedule.
type Delete struct {
	Actor string
	At    time.Time
}

// Fire records that tick is due and queues RunID for it. A tick not after
// the last fired one, or before the cron took effect, changes nothing.
type Fire struct {
	Tick  time.Time
	RunID string
	Actor string
	At    time.Time
}

// RecordFailure records that queueing the run of a tick failed for good.
type RecordFailure struct {
	Tick   time.Time
	Reason string
	Actor  string
	At     time.Time
}

func (Set) isCommand()           {}
func (Delete) isCommand()        {}
func (Fire) isCommand()          {}
func (RecordFailure) isCommand() {}

// Event is a fact about a schedule; all events are schema version 1.
type Event interface{ EventType() string }

// ScheduleSet: the schedule was created or changed.
type ScheduleSet struct {
	ScheduleID  string    `json:"schedule_id"`
	StackID     string    `json:"stack_id"`
	Kind        Kind      `json:"kind"`
	Cron        string    `json:"cron"`
	Reconcile   bool      `json:"reconcile,omitempty"`
	TaskCommand string    `json:"task_command,omitempty"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`
}

// ScheduleDeleted: the schedule was removed.
type ScheduleDeleted struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// ScheduleFired: Tick was due; RunID is to be queued for it (by a drain,
// which resolves the branch head with the stack's credentials).
type ScheduleFired struct {
	Tick        time.Time `json:"tick"`
	RunID       string    `json:"run_id"`
	StackID     string    `json:"stack_id"`
	Kind        Kind      `json:"kind"`
	TaskCommand string    `json:"task_command,omitempty"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`
}

// ScheduleRunFailed: the run of Tick could not be queued.
type ScheduleRunFailed struct {
	Tick   time.Time `json:"tick"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (ScheduleSet) EventType() string       { return "ScheduleSet" }
func (ScheduleDeleted) EventType() string   { return "ScheduleDeleted" }
func (ScheduleFired) EventType() string     { return "ScheduleFired" }
func (ScheduleRunFailed) EventType() string { return "ScheduleRunFailed" }

// Events returns a zero value of every schedule event type.
func Events() []Event {
	return []Event{ScheduleSet{}, ScheduleDeleted{}, ScheduleFired{}, ScheduleRunFailed{}}
}

// Apply folds e into s.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case ScheduleSet:
		if s.cron != e.Cron || s.deleted || s.id == "" {
			s.since = e.At
		}
		s.id, s.stackID, s.kind, s.cron, s.reconcile, s.taskCommand = e.ScheduleID, e.StackID, e.Kind, e.Cron, e.Reconcile, e.TaskCommand
		s.deleted, s.updatedAt = false, e.At
	case ScheduleDeleted:
		s.deleted, s.updatedAt = true, e.At
	case ScheduleFired:
		s.lastTick, s.lastRunID = e.Tick, e.RunID
	}
}

// Decide returns the events c causes on s, or why it is refused.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Set:
		return set(s, c)
	case Delete:
		if err := s.precheck(c.Actor, c.At, nil); err != nil {
			return nil, err
		}
		return []Event{ScheduleDeleted{At: c.At, Actor: c.Actor}}, nil
	case Fire:
		var p domain.Problems
		if c.Tick.IsZero() {
			p.Add("tick", "must be set")
		}
		p.Check(ids.Run.Validate("run_id", c.RunID))
		if err := s.precheck(c.Actor, c.At, p); err != nil {
			return nil, err
		}
		if !c.Tick.After(s.lastTick) || c.Tick.Before(s.since) {
			return nil, nil // fired already, or from before the cron took effect
		}
		return []Event{ScheduleFired{Tick: c.Tick, RunID: c.RunID, StackID: s.stackID, Kind: s.kind,
			TaskCommand: s.taskCommand, At: c.At, Actor: c.Actor}}, nil
	case RecordFailure:
		var p domain.Problems
		p.CheckText("reason", c.Reason, run.MaxNoteLength, true)
		if err := s.precheck(c.Actor, c.At, p); err != nil {
			return nil, err
		}
		return []Event{ScheduleRunFailed{Tick: c.Tick, Reason: c.Reason, At: c.At, Actor: c.Actor}}, nil
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown schedule command %T", c)}
}

func (s State) precheck(actor string, at time.Time, p domain.Problems) error {
	p.CheckOrigin(actor, at)
	if err := p.Err(); err != nil {
		return err
	}
	if !s.Exists() {
		return fmt.Errorf("schedule: %w", domain.ErrNotFound)
	}
	return nil
}

func set(s State, c Set) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Schedule.Validate("schedule_id", c.ScheduleID))
	p.Check(ids.Stack.Validate("stack_id", c.StackID))
	if !c.Kind.Valid() {
		p.Addf("kind", "must be %s, %s or %s, not %q", Drift, Tracked, Task, c.Kind)
	}
	p.CheckText("cron", c.Cron, MaxCronLength, true)
	if c.Reconcile && c.Kind != Drift {
		p.Add("reconcile", "only drift detection reconciles")
	}
	if c.Kind == Task {
		p.CheckText("task_command", c.TaskCommand, run.MaxTaskCommandLength, true)
	} else if c.TaskCommand != "" {
		p.Add("task_command", "only TASK schedules have a command")
	}
	if c.Kind == Drift && c.ScheduleID != DriftID(c.StackID) {
		p.Addf("schedule_id", "a drift schedule's id is %s", DriftID(c.StackID))
	}
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.id != "" && (s.stackID != c.StackID || s.kind != c.Kind) {
		return nil, &domain.ValidationError{Field: "kind", Problem: "a schedule's stack and kind cannot change"}
	}
	cron := strings.TrimSpace(c.Cron)
	if s.Exists() && s.cron == cron && s.reconcile == c.Reconcile && s.taskCommand == c.TaskCommand {
		return nil, nil
	}
	return []Event{ScheduleSet{ScheduleID: c.ScheduleID, StackID: c.StackID, Kind: c.Kind, Cron: cron,
		Reconcile: c.Reconcile, TaskCommand: c.TaskCommand, At: c.At, Actor: c.Actor}}, nil
}
