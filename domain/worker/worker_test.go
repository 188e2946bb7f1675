package worker

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

const (
	workerID = "wkr_01"
	poolID   = "wp_01"
	run1     = "run_01"
	run2     = "run_02"
	launcher = "launcher:host-1"
	sched    = "system:scheduler"
	alice    = "user:alice"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func given(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

var (
	registered = WorkerRegistered{WorkerID: workerID, PoolID: poolID, Metadata: map[string]string{"instance_id": "i-123"}, At: at(0), Actor: launcher}
	busy       = WorkerRunAssigned{RunID: run1, At: at(1), Actor: sched}
	drained    = WorkerDrained{At: at(2), Actor: alice}
	lost       = WorkerLost{RunID: run1, Note: "no heartbeat for 90s", At: at(3), Actor: sched}
	exited     = WorkerExited{At: at(3), Actor: launcher}
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name    string
		given   []Event
		cmd     Command
		want    []Event
		is      error
		field   string
		notIdle *NotIdleError
	}{
		// Register
		{name: "register", cmd: Register{WorkerID: workerID, PoolID: poolID, Metadata: map[string]string{"instance_id": "i-123"}, Actor: launcher, At: at(0)},
			want: []Event{registered}},
		{name: "register without metadata", cmd: Register{WorkerID: workerID, PoolID: poolID, Metadata: map[string]string{}, Actor: launcher, At: at(0)},
			want: []Event{WorkerRegistered{WorkerID: workerID, PoolID: poolID, At: at(0), Actor: launcher}}},
		{name: "register with a run id", cmd: Register{WorkerID: run1, PoolID: poolID, Actor: launcher, At: at(0)}, is: domain.ErrInvalid, field: "worker_id"},
		{name: "register without pool", cmd: Register{WorkerID: workerID, Actor: launcher, At: at(0)}, is: domain.ErrInvalid, field: "pool_id"},
		{name: "register with a bad metadata key", cmd: Register{WorkerID: workerID, PoolID: poolID, Metadata: map[string]string{"a b": "x"}, Actor: launcher, At: at(0)},
			is: domain.ErrInvalid, field: "metadata"},
		{name: "register with a long metadata value", cmd: Register{WorkerID: workerID, PoolID: poolID, Metadata: map[string]string{"k": strings.Repeat("x", 257)}, Actor: launcher, At: at(0)},
			is: domain.ErrInvalid, field: "metadata.k"},
		{name: "register with the launcher's version", cmd: Register{WorkerID: workerID, PoolID: poolID, LauncherVersion: "v1.4.0", Actor: launcher, At: at(0)},
			want: []Event{WorkerRegistered{WorkerID: workerID, PoolID: poolID, LauncherVersion: "v1.4.0", At: at(0), Actor: launcher}}},
		{name: "register with a long launcher version", cmd: Register{WorkerID: workerID, PoolID: poolID, LauncherVersion: strings.Repeat("1", 129), Actor: launcher, At: at(0)},
			is: domain.ErrInvalid, field: "launcher_version"},
		{name: "register with a control character in the launcher version", cmd: Register{WorkerID: workerID, PoolID: poolID, LauncherVersion: "v1\x1b", Actor: launcher, At: at(0)},
			is: domain.ErrInvalid, field: "launcher_version"},
		{name: "register twice", given: []Event{registered}, cmd: Register{WorkerID: workerID, PoolID: poolID, Actor: launcher, At: at(1)}, is: domain.ErrAlreadyExists},
		{name: "register a gone worker again", given: []Event{registered, exited}, cmd: Register{WorkerID: workerID, PoolID: poolID, Actor: launcher, At: at(4)}, is: domain.ErrAlreadyExists},

		// Heartbeat: checked, never recorded
		{name: "heartbeat", given: []Event{registered, busy}, cmd: Heartbeat{Actor: workerID, At: at(2)}},
		{name: "heartbeat of an unknown worker", cmd: Heartbeat{Actor: workerID, At: at(2)}, is: domain.ErrNotFound},
		{name: "heartbeat of a lost worker", given: []Event{registered, busy, lost}, cmd: Heartbeat{Actor: workerID, At: at(4)}, is: ErrGone},
		{name: "heartbeat without time", given: []Event{registered}, cmd: Heartbeat{Actor: workerID}, is: domain.ErrInvalid, field: "at"},

		// Drain / Undrain
		{name: "drain", given: []Event{registered}, cmd: Drain{Actor: alice, At: at(2)}, want: []Event{drained}},
		{name: "drain a busy worker", given: []Event{registered, busy}, cmd: Drain{Actor: alice, At: at(2)}, want: []Event{drained}},
		{name: "drain twice", given: []Event{registered, drained}, cmd: Drain{Actor: alice, At: at(3)}},
		{name: "drain a gone worker", given: []Event{registered, exited}, cmd: Drain{Actor: alice, At: at(4)}, is: ErrGone},
		{name: "undrain", given: []Event{registered, drained}, cmd: Undrain{Actor: alice, At: at(3)}, want: []Event{WorkerUndrained{At: at(3), Actor: alice}}},
		{name: "undrain an active worker", given: []Event{registered}, cmd: Undrain{Actor: alice, At: at(3)}},
		{name: "undrain a lost worker", given: []Event{registered, drained, lost}, cmd: Undrain{Actor: alice, At: at(4)}, is: ErrGone},

		// AssignRun
		{name: "assign to an idle worker", given: []Event{registered}, cmd: AssignRun{RunID: run1, Actor: sched, At: at(1)}, want: []Event{busy}},
		{name: "assign the same run again", given: []Event{registered, busy}, cmd: AssignRun{RunID: run1, Actor: sched, At: at(2)}},
		{name: "assign to a busy worker", given: []Event{registered, busy}, cmd: AssignRun{RunID: run2, Actor: sched, At: at(2)},
			is: ErrNotIdle, notIdle: &NotIdleError{Status: Busy, RunID: run1}},
		{name: "assign to a drained worker", given: []Event{registered, drained}, cmd: AssignRun{RunID: run2, Actor: sched, At: at(3)},
			is: ErrNotIdle, notIdle: &NotIdleError{Status: Drained}},
		{name: "assign to a lost worker", given: []Event{registered, lost}, cmd: AssignRun{RunID: run2, Actor: sched, At: at(4)}, is: ErrGone},
		{name: "assign to an exited worker", given: []Event{registered, exited}, cmd: AssignRun{RunID: run2, Actor: sched, At: at(4)}, is: ErrGone},
		{name: "assign to an unknown worker", cmd: AssignRun{RunID: run1, Actor: sched, At: at(1)}, is: domain.ErrNotFound},
		{name: "assign a stack id", given: []Event{registered}, cmd: AssignRun{RunID: "stk_1", Actor: sched, At: at(1)}, is: domain.ErrInvalid, field: "run_id"},
		{name: "assign after the last run finished", given: []Event{registered, busy, WorkerRunFinished{RunID: run1, At: at(2), Actor: sched}},
			cmd: AssignRun{RunID: run2, Actor: sched, At: at(3)}, want: []Event{WorkerRunAssigned{RunID: run2, At: at(3), Actor: sched}}},

		// RunFinished
		{name: "run finished", given: []Event{registered, busy}, cmd: RunFinished{RunID: run1, Actor: sched, At: at(2)},
			want: []Event{WorkerRunFinished{RunID: run1, At: at(2), Actor: sched}}},
		{name: "another run finished", given: []Event{registered, busy}, cmd: RunFinished{RunID: run2, Actor: sched, At: at(2)}},
		{name: "run finished on an idle worker", given: []Event{registered}, cmd: RunFinished{RunID: run1, Actor: sched, At: at(2)}},
		{name: "run finished on a lost worker", given: []Event{registered, busy, lost}, cmd: RunFinished{RunID: run1, Actor: sched, At: at(4)}},
		{name: "run finished with a bad id", given: []Event{registered, busy}, cmd: RunFinished{RunID: "", Actor: sched, At: at(2)}, is: domain.ErrInvalid, field: "run_id"},

		// MarkLost / Deregister
		{name: "lose a busy worker", given: []Event{registered, busy}, cmd: MarkLost{Note: "no heartbeat for 90s", Actor: sched, At: at(3)}, want: []Event{lost}},
		{name: "lose an idle worker", given: []Event{registered}, cmd: MarkLost{Actor: sched, At: at(3)}, want: []Event{WorkerLost{At: at(3), Actor: sched}}},
		{name: "lose a lost worker", given: []Event{registered, lost}, cmd: MarkLost{Actor: sched, At: at(5)}},
		{name: "lose an unknown worker", cmd: MarkLost{Actor: sched, At: at(5)}, is: domain.ErrNotFound},
		{name: "exit", given: []Event{registered}, cmd: Deregister{Actor: launcher, At: at(3)}, want: []Event{exited}},
		{name: "exit holding a run", given: []Event{registered, busy}, cmd: Deregister{Note: "SIGTERM grace period over", Actor: launcher, At: at(3)},
			want: []Event{WorkerExited{RunID: run1, Note: "SIGTERM grace period over", At: at(3), Actor: launcher}}},
		{name: "exit after being lost", given: []Event{registered, lost}, cmd: Deregister{Actor: launcher, At: at(5)}},
		{name: "exit with a control character in the note", given: []Event{registered}, cmd: Deregister{Note: "\x07", Actor: launcher, At: at(3)}, is: domain.ErrInvalid, field: "note"},

		{name: "pointer command", given: []Event{registered}, cmd: &Drain{Actor: alice, At: at(2)}, want: []Event{drained}},
		{name: "nil command", given: []Event{registered}, cmd: nil, is: domain.ErrInvalid, field: "command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(given(tc.given...), tc.cmd)
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
			switch {
			case tc.is == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			var ve *domain.ValidationError
			if tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field) {
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
			var ni *NotIdleError
			if tc.notIdle != nil && (!errors.As(err, &ni) || *ni != *tc.notIdle) {
				t.Errorf("error %#v, want %#v", err, tc.notIdle)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "Worker", Events())
}

func TestStatus(t *testing.T) {
	cases := []struct {
		name   string
		events []Event
		want   Status
	}{
		{"never registered", nil, ""},
		{"registered", []Event{registered}, Idle},
		{"with a run", []Event{registered, busy}, Busy},
		{"drained while busy", []Event{registered, busy, drained}, Drained},
		{"drained", []Event{registered, drained}, Drained},
		{"undrained", []Event{registered, drained, WorkerUndrained{At: at(3), Actor: alice}}, Idle},
		{"run finished", []Event{registered, busy, WorkerRunFinished{RunID: run1, At: at(2), Actor: sched}}, Idle},
		{"stale run finished", []Event{registered, busy, WorkerRunFinished{RunID: run2, At: at(2), Actor: sched}}, Busy},
		{"lost", []Event{registered, busy, drained, lost}, Lost},
		{"exited", []Event{registered, exited}, Exited},
	}
	for _, tc := range cases {
		if got := given(tc.events...).Status(); got != tc.want {
			t.Errorf("%s: status %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestApplyAccessors(t *testing.T) {
	s := given(registered, busy)
	if s.ID() != workerID || s.PoolID() != poolID || !s.RegisteredAt().Equal(at(0)) || s.RunID() != run1 || s.Gone() {
		t.Fatalf("registered worker: %+v", s)
	}
	md := s.Metadata()
	if !reflect.DeepEqual(md, map[string]string{"instance_id": "i-123"}) {
		t.Errorf("metadata %v", md)
	}
	md["instance_id"] = "changed"
	if s.Metadata()["instance_id"] != "i-123" {
		t.Error("Metadata() exposes the state's map")
	}
	if s.LauncherVersion() != "" {
		t.Errorf("launcher version %q of a worker that reported none", s.LauncherVersion())
	}
	if v := given(WorkerRegistered{WorkerID: workerID, PoolID: poolID, LauncherVersion: "v1.4.0", At: at(0), Actor: launcher}).LauncherVersion(); v != "v1.4.0" {
		t.Errorf("launcher version %q, want v1.4.0", v)
	}
	s.Apply(&lost) // pointer, as a decoder would produce it
	if !s.Gone() || !s.GoneAt().Equal(at(3)) || s.GoneNote() != "no heartbeat for 90s" || s.RunID() != run1 {
		t.Errorf("lost worker: gone %v at %v note %q run %q", s.Gone(), s.GoneAt(), s.GoneNote(), s.RunID())
	}
}
