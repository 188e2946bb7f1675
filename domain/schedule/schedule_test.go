package schedule

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

const (
	stk   = "stk_1"
	user  = "user:a"
	sched = "system:scheduler"
)

func TestEventsConform(t *testing.T) { eventtest.Conformance(t, "Schedule", Events()) }

func TestDecide(t *testing.T) {
	id := DriftID(stk)
	set := ScheduleSet{ScheduleID: id, StackID: stk, Kind: Drift, Cron: "*/15 * * * *", Reconcile: true, At: at(0), Actor: user}
	fired := ScheduleFired{Tick: at(15), RunID: "run_1", StackID: stk, Kind: Drift, At: at(15), Actor: sched}
	setCmd := func(f func(*Set)) Set {
		c := Set{ScheduleID: id, StackID: stk, Kind: Drift, Cron: "*/15 * * * *", Reconcile: true, Actor: user, At: at(0)}
		f(&c)
		return c
	}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   error
	}{
		{"set drift", nil, setCmd(func(*Set) {}), []Event{set}, nil},
		{"set the same again is nothing", []Event{set}, setCmd(func(*Set) {}), nil, nil},
		{"set a task", nil, Set{ScheduleID: "sch_2", StackID: stk, Kind: Task, Cron: "@daily", TaskCommand: "terraform state list", Actor: user, At: at(0)},
			[]Event{ScheduleSet{ScheduleID: "sch_2", StackID: stk, Kind: Task, Cron: "@daily", TaskCommand: "terraform state list", At: at(0), Actor: user}}, nil},
		{"task without command", nil, Set{ScheduleID: "sch_2", StackID: stk, Kind: Task, Cron: "@daily", Actor: user, At: at(0)}, nil, domain.ErrInvalid},
		{"reconcile a tracked schedule", nil, Set{ScheduleID: "sch_2", StackID: stk, Kind: Tracked, Cron: "@daily", Reconcile: true, Actor: user, At: at(0)}, nil, domain.ErrInvalid},
		{"drift with another id", nil, setCmd(func(c *Set) { c.ScheduleID = "sch_2" }), nil, domain.ErrInvalid},
		{"no cron", nil, setCmd(func(c *Set) { c.Cron = " " }), nil, domain.ErrInvalid},
		{"unknown kind", nil, setCmd(func(c *Set) { c.Kind = "NIGHTLY" }), nil, domain.ErrInvalid},
		{"change of kind", []Event{set}, setCmd(func(c *Set) { c.Kind = Tracked; c.Reconcile = false; c.ScheduleID = id }), nil, domain.ErrInvalid},
		{"fire", []Event{set}, Fire{Tick: at(15), RunID: "run_1", Actor: sched, At: at(15)}, []Event{fired}, nil},
		{"fire the same tick again is nothing", []Event{set, fired}, Fire{Tick: at(15), RunID: "run_2", Actor: sched, At: at(16)}, nil, nil},
		{"fire an older tick is nothing", []Event{set, fired}, Fire{Tick: at(10), RunID: "run_2", Actor: sched, At: at(16)}, nil, nil},
		{"fire a tick from before the cron", []Event{set}, Fire{Tick: at(-15), RunID: "run_2", Actor: sched, At: at(1)}, nil, nil},
		{"fire the next tick", []Event{set, fired}, Fire{Tick: at(30), RunID: "run_2", Actor: sched, At: at(30)},
			[]Event{ScheduleFired{Tick: at(30), RunID: "run_2", StackID: stk, Kind: Drift, At: at(30), Actor: sched}}, nil},
		{"fire with a bad run id", []Event{set}, Fire{Tick: at(15), RunID: "x", Actor: sched, At: at(15)}, nil, domain.ErrInvalid},
		{"fire a deleted schedule", []Event{set, ScheduleDeleted{At: at(1), Actor: user}}, Fire{Tick: at(15), RunID: "run_1", Actor: sched, At: at(15)}, nil, domain.ErrNotFound},
		{"delete", []Event{set}, Delete{Actor: user, At: at(1)}, []Event{ScheduleDeleted{At: at(1), Actor: user}}, nil},
		{"delete unknown", nil, Delete{Actor: user, At: at(1)}, nil, domain.ErrNotFound},
		{"record a failure", []Event{set, fired}, RecordFailure{Tick: at(15), Reason: "no branch", Actor: sched, At: at(16)},
			[]Event{ScheduleRunFailed{Tick: at(15), Reason: "no branch", At: at(16), Actor: sched}}, nil},
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
}

func TestApplyMovesSinceOnlyWhenTheCronChanges(t *testing.T) {
	var s State
	s.Apply(ScheduleSet{ScheduleID: "sch_1", StackID: stk, Kind: Tracked, Cron: "@hourly", At: at(0), Actor: user})
	s.Apply(&ScheduleFired{Tick: at(60), RunID: "run_1", At: at(60), Actor: sched})
	s.Apply(ScheduleSet{ScheduleID: "sch_1", StackID: stk, Kind: Tracked, Cron: "@hourly", At: at(70), Actor: user})
	if !s.Since().Equal(at(0)) || !s.LastTick().Equal(at(60)) || s.LastRunID() != "run_1" || s.Cron() != "@hourly" {
		t.Fatalf("same cron: %+v", s)
	}
	s.Apply(ScheduleSet{ScheduleID: "sch_1", StackID: stk, Kind: Tracked, Cron: "@daily", At: at(80), Actor: user})
	if !s.Since().Equal(at(80)) || s.Kind() != Tracked || s.StackID() != stk || s.Reconcile() || s.TaskCommand() != "" || s.ID() != "sch_1" {
		t.Fatalf("new cron: %+v", s)
	}
	s.Apply(ScheduleDeleted{At: at(90), Actor: user})
	if s.Exists() {
		t.Fatal("deleted schedule exists")
	}
}
