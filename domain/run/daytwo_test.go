package run

import (
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
)

// Destroy runs, replans and retries: (given events, command) → events | error.
func TestDecideDestroyAndReplan(t *testing.T) {
	trig := func(mod func(*Trigger)) Trigger {
		c := Trigger{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Actor: user, At: at(0)}
		mod(&c)
		return c
	}
	autodeployDestroyPlanning := join([]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha,
		Autodeploy: true, Destroy: true, At: at(0), Actor: user}}, hPlanning[1:])
	const other = "run_01JOTHER"

	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   *wantErr
	}{
		// Trigger: the destroy flag and the retry link
		{"trigger a destroy run", nil, trig(func(c *Trigger) { c.Destroy = true }),
			[]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Destroy: true, At: at(0), Actor: user}}, nil},
		{"destroy on a proposed run", nil, trig(func(c *Trigger) { c.Type, c.Destroy = Proposed, true }), nil, invalid("destroy")},
		{"destroy on a task", nil, trig(func(c *Trigger) { c.Type, c.TaskCommand, c.Destroy = Task, "ls", true }), nil, invalid("destroy")},
		{"trigger a retry", nil, trig(func(c *Trigger) { c.RetryOf = other }),
			[]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, RetryOf: other, At: at(0), Actor: user}}, nil},
		{"retry of a stack id", nil, trig(func(c *Trigger) { c.RetryOf = stackID }), nil, invalid("retry_of")},
		{"a run retrying itself", nil, trig(func(c *Trigger) { c.RetryOf = runID }), nil, invalid("retry_of")},

		// The plan of a destroy run is applied in DESTROYING
		{"autodeploy destroys with the plan it made", autodeployDestroyPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, true), started(PhaseDestroying, 7)}, nil},
		{"a destroy plan with changes waits for confirmation", hDestroyPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, true), RunUnconfirmed{WorkerID: worker, At: at(7), Actor: worker}}, nil},
		{"nothing to destroy finishes", hDestroyPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, false), RunFinished{StackID: stackID, WorkerID: worker, At: at(7), Actor: worker}}, nil},
		{"a destroy run does not apply", hDestroyPreparingApply, StartPhase{Phase: PhaseApplying, Actor: worker2, At: at(11)},
			nil, illegal(PreparingApply, "the plan of this run is applied in DESTROYING")},
		{"only a destroy run destroys", hPreparingApply, StartPhase{Phase: PhaseDestroying, Actor: worker2, At: at(11)},
			nil, illegal(PreparingApply, "the plan of this run is applied in APPLYING")},
		{"a destroying run cannot be stopped", hDestroying, Stop{Actor: user, At: at(12)}, nil, illegal(Destroying, "")},
		{"a failed destroy fails the run", hDestroying, PhaseFinished{Phase: PhaseDestroying, ExitCode: 1, Actor: worker2, At: at(12)},
			[]Event{RunPhaseFinished{Phase: PhaseDestroying, ExitCode: 1, At: at(12), Actor: worker2},
				RunFailed{StackID: stackID, WorkerID: worker2, Note: "DESTROYING exited with code 1", At: at(12), Actor: worker2}}, nil},

		// Replan: UNCONFIRMED → REPLAN_REQUESTED → READY
		{"replan an unconfirmed run", hUnconfirmed, Replan{Actor: user, At: at(8)},
			[]Event{RunReplanRequested{At: at(8), Actor: user}}, nil},
		{"replan again is a no-op", hReplanRequested, Replan{Actor: user, At: at(9)}, nil, nil},
		{"replan while planning", hPlanning, Replan{Actor: user, At: at(6)}, nil, illegal(Planning, "")},
		{"replan a confirmed run", hConfirmed, Replan{Actor: user, At: at(9)}, nil, illegal(Confirmed, "")},
		{"replan a finished run", hFinished, Replan{Actor: user, At: at(13)}, nil, illegal(Finished, "")},
		{"replan without actor", hUnconfirmed, Replan{At: at(8)}, nil, invalid("actor")},
		{"replan a missing run", nil, Replan{Actor: user, At: at(8)}, nil, &wantErr{is: domain.ErrNotFound}},
		{"the replanned run is ready once its workspace is gone", hReplanRequested, MarkReady{Actor: user, At: at(9)},
			[]Event{RunReady{At: at(9), Actor: user}}, nil},
		{"a replanned run cannot be confirmed", hReplanRequested, Confirm{Actor: user, At: at(9)}, nil, illegal(ReplanRequested, "")},
		{"a replanned run can be discarded", hReplanRequested, Discard{Note: "never mind", Actor: user, At: at(9)},
			[]Event{RunDiscarded{StackID: stackID, Note: "never mind", At: at(9), Actor: user}}, nil},
		{"a replanned run takes no worker yet", hReplanRequested, Assign{WorkerID: worker2, PoolID: pool, Actor: sched, At: at(9)},
			nil, illegal(ReplanRequested, "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(t, given(tc.given...), tc.cmd)
			checkErr(t, err, tc.err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestRetryTrigger(t *testing.T) {
	const retryID = "run_01JRETRY"
	retry := Retry{RunID: retryID, Actor: "user:bob", At: at(40)}
	destroyFailed := join(hDestroyPlanning, []Event{RunFailed{StackID: stackID, WorkerID: worker, Note: "boom", At: at(7), Actor: worker}})
	taskFailed := join([]Event{queued(Task)}, []Event{RunFailed{StackID: stackID, Note: "boom", At: at(1), Actor: sched}})
	cases := []struct {
		name  string
		given []Event
		retry Retry
		want  Trigger
		err   *wantErr
	}{
		{"a failed run", hFailed, retry,
			Trigger{RunID: retryID, StackID: stackID, Type: Tracked, Commit: sha, RetryOf: runID, Actor: "user:bob", At: at(40)}, nil},
		{"a stopped run, with today's autodeploy", hStopped, Retry{RunID: retryID, Autodeploy: true, Actor: "user:bob", At: at(40)},
			Trigger{RunID: retryID, StackID: stackID, Type: Tracked, Commit: sha, Autodeploy: true, RetryOf: runID, Actor: "user:bob", At: at(40)}, nil},
		{"a failed destroy run destroys again", destroyFailed, retry,
			Trigger{RunID: retryID, StackID: stackID, Type: Tracked, Commit: sha, Destroy: true, RetryOf: runID, Actor: "user:bob", At: at(40)}, nil},
		{"a finished run", hFinished, retry, Trigger{}, illegal(Finished, "only a run that FAILED or was STOPPED is retried")},
		{"a discarded run", hDiscarded, retry, Trigger{}, illegal(Discarded, "only a run that FAILED or was STOPPED is retried")},
		{"a run under way", hPlanning, retry, Trigger{}, illegal(Planning, "only a run that FAILED or was STOPPED is retried")},
		{"a failed task", taskFailed, retry, Trigger{}, illegal(Failed, "only TRACKED runs are retried; trigger a new TASK run instead")},
		{"a run that does not exist", nil, retry, Trigger{}, &wantErr{is: domain.ErrNotFound}},
		{"a bad new run id", hFailed, Retry{RunID: stackID, Actor: "user:bob", At: at(40)}, Trigger{}, invalid("run_id")},
		{"no actor", hFailed, Retry{RunID: retryID, At: at(40)}, Trigger{}, invalid("actor")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RetryTrigger(given(tc.given...), tc.retry)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("trigger\n got  %#v\n want %#v", got, tc.want)
			}
			if err != nil {
				return
			}
			// The trigger is one the new run accepts, and its event links back.
			events, err := decide(t, State{}, got)
			if err != nil {
				t.Fatalf("the new run refuses the retry's trigger: %v", err)
			}
			var s State
			s.Apply(events[0])
			if s.RetryOf() != runID || s.Commit() != sha || s.Destroy() != got.Destroy {
				t.Errorf("the retry is of %q at %s (destroy %v)", s.RetryOf(), s.Commit(), s.Destroy())
			}
		})
	}
}

// A replanned run plans again on any worker and ends UNCONFIRMED as a plan
// does; a destroy run goes through DESTROYING.
func TestReplanAndDestroyLifecycles(t *testing.T) {
	s := given(hUnconfirmed...)
	step(t, &s, Replan{Actor: user, At: at(8)})
	if s.Status() != ReplanRequested || s.WorkerID() != "" {
		t.Fatalf("after replan: %s, worker %q", s.Status(), s.WorkerID())
	}
	step(t, &s, MarkReady{Actor: user, At: at(9)})
	step(t, &s, Assign{WorkerID: worker2, PoolID: pool, Actor: sched, At: at(10)})
	for i, p := range []Phase{PhasePreparing, PhaseInitializing} {
		step(t, &s, StartPhase{Phase: p, Actor: worker2, At: at(11 + i)})
		step(t, &s, PhaseFinished{Phase: p, Actor: worker2, At: at(11 + i)})
	}
	step(t, &s, StartPhase{Phase: PhasePlanning, Actor: worker2, At: at(13)})
	step(t, &s, PhaseFinished{Phase: PhasePlanning, HasChanges: true, Actor: worker2, At: at(14)})
	if s.Status() != Unconfirmed {
		t.Fatalf("after the second plan: %s", s.Status())
	}
	var statuses []Status
	for _, h := range s.History() {
		statuses = append(statuses, h.Status)
	}
	want := []Status{Queued, Ready, Preparing, Initializing, Planning, Unconfirmed, ReplanRequested, Ready, Preparing, Initializing, Planning, Unconfirmed}
	if !reflect.DeepEqual(statuses, want) {
		t.Errorf("history %v\nwant    %v", statuses, want)
	}

	d := given(hDestroyPreparingApply...)
	if d.ApplyPhase() != PhaseDestroying || !d.Destroy() {
		t.Fatalf("destroy run: apply phase %s", d.ApplyPhase())
	}
	step(t, &d, StartPhase{Phase: PhaseDestroying, Actor: worker2, At: at(11)})
	step(t, &d, PhaseFinished{Phase: PhaseDestroying, Actor: worker2, At: at(12)})
	step(t, &d, Finish{Actor: worker2, At: at(12)})
	if h := d.History(); d.Status() != Finished || h[len(h)-2].Status != Destroying {
		t.Errorf("destroy run ends %s after %v", d.Status(), h)
	}
	if !PhaseDestroying.Applies() || !PhaseApplying.Applies() || PhasePlanning.Applies() {
		t.Error("Applies: want APPLYING and DESTROYING only")
	}
}
