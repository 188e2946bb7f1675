package run

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
)

// wantErr describes the error a case expects; nil means success.
type wantErr struct {
	is     error  // errors.Is target
	field  string // for ErrInvalid: a ValidationError naming this field
	from   Status // for ErrIllegalTransition: the status named
	reason string // for ErrIllegalTransition: the reason given
}

func checkErr(t *testing.T, err error, want *wantErr) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want.is) {
		t.Fatalf("error %v, want %v", err, want.is)
	}
	if want.field != "" && !hasField(err, want.field) {
		t.Errorf("error %v does not name field %q", err, want.field)
	}
	var ite *IllegalTransitionError
	if errors.As(err, &ite) && (ite.From != want.from || ite.Reason != want.reason) {
		t.Errorf("illegal transition from %s (%q), want from %s (%q)", ite.From, ite.Reason, want.from, want.reason)
	}
}

// hasField reports whether err, or one of the errors it joins, is a
// ValidationError naming field.
func hasField(err error, field string) bool {
	var ve *domain.ValidationError
	if errors.As(err, &ve) && ve.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasField(e, field) {
				return true
			}
		}
	}
	return false
}

func invalid(field string) *wantErr { return &wantErr{is: domain.ErrInvalid, field: field} }
func illegal(from Status, reason string) *wantErr {
	return &wantErr{is: ErrIllegalTransition, from: from, reason: reason}
}

func TestDecide(t *testing.T) {
	trig := func(mod func(*Trigger)) Trigger {
		c := Trigger{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Actor: user, At: at(0)}
		mod(&c)
		return c
	}
	autodeployPlanning := join([]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Autodeploy: true, At: at(0), Actor: user}},
		hPlanning[1:])
	proposedPlanning := join([]Event{queued(Proposed)}, hPlanning[1:])

	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   *wantErr
	}{
		// Trigger
		{"trigger tracked", nil, trig(func(*Trigger) {}),
			[]Event{queued(Tracked)}, nil},
		{"trigger normalizes the commit to lower case", nil, trig(func(c *Trigger) { c.Commit = "0123456789ABCDEF0123456789ABCDEF01234567" }),
			[]Event{queued(Tracked)}, nil},
		{"trigger sha-256 commit", nil, trig(func(c *Trigger) { c.Commit = sha + sha[:24] }),
			[]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha + sha[:24], At: at(0), Actor: user}}, nil},
		{"trigger tracked with autodeploy", nil, trig(func(c *Trigger) { c.Autodeploy = true }),
			[]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Autodeploy: true, At: at(0), Actor: user}}, nil},
		{"trigger proposed drift run", nil, trig(func(c *Trigger) { c.Type, c.Drift = Proposed, true }),
			[]Event{RunQueued{RunID: runID, StackID: stackID, Type: Proposed, Commit: sha, Drift: true, At: at(0), Actor: user}}, nil},
		{"trigger task", nil, trig(func(c *Trigger) { c.Type, c.TaskCommand = Task, "terraform state list" }),
			[]Event{queued(Task)}, nil},
		{"trigger with a stack id as run id", nil, trig(func(c *Trigger) { c.RunID = stackID }), nil, invalid("run_id")},
		{"trigger with a run id as stack id", nil, trig(func(c *Trigger) { c.StackID = runID }), nil, invalid("stack_id")},
		{"trigger unknown type", nil, trig(func(c *Trigger) { c.Type = "NIGHTLY" }), nil, invalid("type")},
		{"trigger short commit", nil, trig(func(c *Trigger) { c.Commit = "abc1234" }), nil, invalid("commit")},
		{"trigger non-hex commit", nil, trig(func(c *Trigger) { c.Commit = "g123456789abcdef0123456789abcdef01234567" }), nil, invalid("commit")},
		{"trigger task without command", nil, trig(func(c *Trigger) { c.Type = Task }), nil, invalid("task_command")},
		{"trigger tracked with a command", nil, trig(func(c *Trigger) { c.TaskCommand = "ls" }), nil, invalid("task_command")},
		{"trigger drift on a tracked run", nil, trig(func(c *Trigger) { c.Drift = true }), nil, invalid("drift")},
		{"trigger autodeploy on a proposed run", nil, trig(func(c *Trigger) { c.Type, c.Autodeploy = Proposed, true }), nil, invalid("autodeploy")},
		{"trigger without actor", nil, trig(func(c *Trigger) { c.Actor = " " }), nil, invalid("actor")},
		{"trigger without time", nil, trig(func(c *Trigger) { c.At = time.Time{} }), nil, invalid("at")},
		{"trigger reports every bad field", nil, trig(func(c *Trigger) { c.RunID, c.Commit = "", "" }), nil, invalid("commit")},
		{"trigger existing run", hQueued, trig(func(*Trigger) {}), nil, &wantErr{is: domain.ErrAlreadyExists}},
		{"trigger from a webhook delivery", nil, trig(func(c *Trigger) { c.DeliveryID = "dlv_01" }),
			[]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, At: at(0), Actor: user, DeliveryID: "dlv_01"}}, nil},
		{"trigger with a bad delivery id", nil, trig(func(c *Trigger) { c.DeliveryID = "run_01" }), nil, invalid("delivery_id")},

		// Commands on a run that does not exist
		{"mark ready on missing run", nil, MarkReady{Actor: sched, At: at(1)}, nil, &wantErr{is: domain.ErrNotFound}},
		{"fail missing run", nil, Fail{Note: "x", Actor: sched, At: at(1)}, nil, &wantErr{is: domain.ErrNotFound}},

		// MarkReady
		{"mark ready", hQueued, MarkReady{Actor: sched, At: at(1)},
			[]Event{RunReady{At: at(1), Actor: sched}}, nil},
		{"mark ready without time", hQueued, MarkReady{Actor: sched}, nil, invalid("at")},

		// Assign / Unassign
		{"assign", hReady, Assign{WorkerID: worker, PoolID: pool, Actor: sched, At: at(2)},
			[]Event{RunAssigned{WorkerID: worker, PoolID: pool, At: at(2), Actor: sched}}, nil},
		{"assign the same worker again is a no-op", hReadyAssigned, Assign{WorkerID: worker, PoolID: pool, Actor: sched, At: at(3)},
			nil, nil},
		{"assign another worker", hReadyAssigned, Assign{WorkerID: worker2, PoolID: pool, Actor: sched, At: at(3)},
			nil, illegal(Ready, "already assigned to "+worker)},
		{"assign the apply phase", hConfirmed, Assign{WorkerID: worker2, PoolID: pool, Actor: sched, At: at(9)},
			[]Event{RunAssigned{WorkerID: worker2, PoolID: pool, At: at(9), Actor: sched}}, nil},
		{"assign with a bad worker id", hReady, Assign{WorkerID: "w1", PoolID: pool, Actor: sched, At: at(2)}, nil, invalid("worker_id")},
		{"assign with a bad pool id", hReady, Assign{WorkerID: worker, PoolID: "pool", Actor: sched, At: at(2)}, nil, invalid("pool_id")},
		{"unassign", hReadyAssigned, Unassign{Note: "worker lost", Actor: sched, At: at(3)},
			[]Event{RunUnassigned{WorkerID: worker, Note: "worker lost", At: at(3), Actor: sched}}, nil},
		{"unassign without worker", hReady, Unassign{Actor: sched, At: at(3)}, nil, illegal(Ready, "no worker is assigned")},
		{"unassign after a phase started", hPreparing, Unassign{Actor: sched, At: at(3)}, nil, illegal(Preparing, "")},

		// HandBack
		{"hand back a plan", hPlanning, HandBack{Note: "the worker pool was cycled", Actor: worker, At: at(6)},
			[]Event{RunHandedBack{WorkerID: worker, To: Ready, Note: "the worker pool was cycled", At: at(6), Actor: worker}}, nil},
		{"hand back before an apply", hPreparingApply, HandBack{Actor: worker, At: at(11)},
			[]Event{RunHandedBack{WorkerID: worker2, To: Confirmed, At: at(11), Actor: worker}}, nil},
		{"hand back a run whose stop was requested", hPlanningStop, HandBack{Actor: worker, At: at(7)},
			[]Event{RunStopped{StackID: stackID, WorkerID: worker, Note: "stop requested by " + user, At: at(7), Actor: worker}}, nil},
		{"hand back an apply", hApplying, HandBack{Actor: worker, At: at(12)}, nil, illegal(Applying, "")},
		{"hand back with a control character", hPlanning, HandBack{Note: "\x07", Actor: worker, At: at(6)}, nil, invalid("note")},

		// StartPhase
		{"start preparing", hReadyAssigned, StartPhase{Phase: PhasePreparing, Actor: worker, At: at(3)},
			[]Event{started(PhasePreparing, 3)}, nil},
		{"start preparing without worker", hReady, StartPhase{Phase: PhasePreparing, Actor: worker, At: at(3)},
			nil, illegal(Ready, "no worker is assigned")},
		{"start preparing the apply without worker", hConfirmed, StartPhase{Phase: PhasePreparingApply, Actor: worker, At: at(3)},
			nil, illegal(Confirmed, "no worker is assigned")},
		{"task performs", join(hPerforming[:5]), StartPhase{Phase: PhasePerforming, Actor: worker, At: at(5)},
			[]Event{started(PhasePerforming, 5)}, nil},
		{"task does not plan", join(hPerforming[:5]), StartPhase{Phase: PhasePlanning, Actor: worker, At: at(5)},
			nil, illegal(Initializing, "a TASK run performs its command instead of planning")},
		{"tracked run does not perform", hInitializing, StartPhase{Phase: PhasePerforming, Actor: worker, At: at(5)},
			nil, illegal(Initializing, "only TASK runs perform a command")},
		{"no new phase after a stop request", join(hInitializing, []Event{RunStopRequested{Actor: user, At: at(5)}}),
			StartPhase{Phase: PhasePlanning, Actor: worker, At: at(5)}, nil, illegal(Initializing, "a stop was requested")},
		{"start unknown phase", hReadyAssigned, StartPhase{Phase: "DEPLOYING", Actor: worker, At: at(3)}, nil, invalid("phase")},

		// PhaseFinished: the end of PLANNING routes the run
		{"plan with changes waits for confirmation", hPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, true), RunUnconfirmed{WorkerID: worker, At: at(7), Actor: worker}}, nil},
		{"plan with changes and autodeploy applies", autodeployPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, true), started(PhaseApplying, 7)}, nil},
		{"plan without changes finishes", hPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, false), RunFinished{StackID: stackID, WorkerID: worker, At: at(7), Actor: worker}}, nil},
		{"proposed plan with changes finishes", proposedPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Actor: worker, At: at(7)},
			[]Event{phaseDone(PhasePlanning, 7, true), RunFinished{StackID: stackID, WorkerID: worker, At: at(7), Actor: worker}}, nil},
		{"failed phase fails the run", hInitializing,
			PhaseFinished{Phase: PhaseInitializing, ExitCode: 1, Duration: time.Second, Actor: worker, At: at(5)},
			[]Event{RunPhaseFinished{Phase: PhaseInitializing, ExitCode: 1, Duration: time.Second, At: at(5), Actor: worker},
				RunFailed{StackID: stackID, WorkerID: worker, Note: "INITIALIZING exited with code 1", At: at(5), Actor: worker}}, nil},
		{"a failed phase's note becomes the run's", hInitializing,
			PhaseFinished{Phase: PhaseInitializing, ExitCode: 137, Note: "logs timeout: no output for 7m0s", Actor: worker, At: at(5)},
			[]Event{RunPhaseFinished{Phase: PhaseInitializing, ExitCode: 137, Note: "logs timeout: no output for 7m0s", At: at(5), Actor: worker},
				RunFailed{StackID: stackID, WorkerID: worker, Note: "INITIALIZING failed: logs timeout: no output for 7m0s (exit code 137)", At: at(5), Actor: worker}}, nil},
		{"interrupted phase after a stop request stops the run", hPlanningStop,
			PhaseFinished{Phase: PhasePlanning, ExitCode: 130, Actor: worker, At: at(7)},
			[]Event{RunPhaseFinished{Phase: PhasePlanning, ExitCode: 130, At: at(7), Actor: worker},
				RunStopped{StackID: stackID, WorkerID: worker, Note: "stop requested by " + user, At: at(7), Actor: worker}}, nil},
		{"applying succeeded: run waits for Finish", hApplying,
			PhaseFinished{Phase: PhaseApplying, Duration: time.Minute, Actor: worker2, At: at(12)},
			[]Event{RunPhaseFinished{Phase: PhaseApplying, Duration: time.Minute, At: at(12), Actor: worker2}}, nil},
		{"failed apply fails the run", hApplying,
			PhaseFinished{Phase: PhaseApplying, ExitCode: 2, Actor: worker2, At: at(12)},
			[]Event{RunPhaseFinished{Phase: PhaseApplying, ExitCode: 2, At: at(12), Actor: worker2},
				RunFailed{StackID: stackID, WorkerID: worker2, Note: "APPLYING exited with code 2", At: at(12), Actor: worker2}}, nil},
		{"a phase reports only once", join(hApplying, []Event{phaseDone(PhaseApplying, 12, false)}),
			PhaseFinished{Phase: PhaseApplying, Actor: worker2, At: at(12)}, nil, illegal(Applying, "the phase already reported its result")},
		{"finishing another phase", hPlanning, PhaseFinished{Phase: PhaseApplying, Actor: worker, At: at(7)}, nil, illegal(Planning, "")},
		{"changes outside planning", hApplying, PhaseFinished{Phase: PhaseApplying, HasChanges: true, Actor: worker, At: at(7)}, nil, invalid("has_changes")},
		{"negative duration", hPlanning, PhaseFinished{Phase: PhasePlanning, Duration: -1, Actor: worker, At: at(7)}, nil, invalid("duration")},
		{"unknown phase finished", hPlanning, PhaseFinished{Phase: "X", Actor: worker, At: at(7)}, nil, invalid("phase")},
		{"planning reports its plan's summary", hPlanning,
			PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Plan: &PlanSummary{Add: 2, Change: 1, Destroy: 1}, Actor: worker, At: at(7)},
			[]Event{RunPhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Plan: &PlanSummary{Add: 2, Change: 1, Destroy: 1}, At: at(7), Actor: worker},
				RunUnconfirmed{WorkerID: worker, At: at(7), Actor: worker}}, nil},
		{"a plan summary outside planning", hApplying,
			PhaseFinished{Phase: PhaseApplying, Plan: &PlanSummary{Add: 1}, Actor: worker2, At: at(12)}, nil, invalid("plan")},
		{"a negative plan count", hPlanning,
			PhaseFinished{Phase: PhasePlanning, HasChanges: true, Plan: &PlanSummary{Destroy: -1}, Actor: worker, At: at(7)}, nil, invalid("plan")},

		// Confirm, Discard, Cancel, Skip
		{"confirm", hUnconfirmed, Confirm{Actor: user, At: at(8)}, []Event{RunConfirmed{At: at(8), Actor: user}}, nil},
		{"discard the plan", hUnconfirmed, Discard{Note: "not now", Actor: user, At: at(8)},
			[]Event{RunDiscarded{StackID: stackID, Note: "not now", At: at(8), Actor: user}}, nil},
		{"cancel before start frees the assigned worker", hReadyAssigned, Cancel{Actor: user, At: at(3)},
			[]Event{RunCanceled{StackID: stackID, WorkerID: worker, At: at(3), Actor: user}}, nil},
		{"skip superseded run", hQueued, Skip{Note: "superseded by run_02", Actor: sched, At: at(3)},
			[]Event{RunSkipped{StackID: stackID, Note: "superseded by run_02", At: at(3), Actor: sched}}, nil},
		{"cancel with a control character in the note", hQueued, Cancel{Note: "a\x00b", Actor: user, At: at(3)}, nil, invalid("note")},
		{"cancel a started run", hPlanning, Cancel{Actor: user, At: at(6)}, nil, illegal(Planning, "")},

		// Stop
		{"stop while planning", hPlanning, Stop{Note: "wrong branch", Actor: user, At: at(6)},
			[]Event{RunStopRequested{WorkerID: worker, PoolID: pool, Note: "wrong branch", At: at(6), Actor: user}}, nil},
		{"stop twice is a no-op", hPlanningStop, Stop{Actor: user, At: at(6)}, nil, nil},
		{"confirmed run cannot be stopped", hConfirmed, Stop{Actor: user, At: at(9)}, nil, illegal(Confirmed, "")},
		{"applying run cannot be stopped", hApplying, Stop{Actor: user, At: at(12)}, nil, illegal(Applying, "")},
		{"worker reports stopped", hPlanningStop, MarkStopped{Actor: worker, At: at(7)},
			[]Event{RunStopped{StackID: stackID, WorkerID: worker, Note: "stop requested by " + user, At: at(7), Actor: worker}}, nil},
		{"worker reports stopped with its own note", hPlanningStop, MarkStopped{Note: "terraform interrupted", Actor: worker, At: at(7)},
			[]Event{RunStopped{StackID: stackID, WorkerID: worker, Note: "terraform interrupted", At: at(7), Actor: worker}}, nil},
		{"stopped without a request", hPlanning, MarkStopped{Actor: worker, At: at(7)}, nil, illegal(Planning, "no stop was requested")},

		// Fail, Finish
		{"fail while applying", hApplying, Fail{Note: "worker lost", Actor: sched, At: at(12)},
			[]Event{RunFailed{StackID: stackID, WorkerID: worker2, Note: "worker lost", At: at(12), Actor: sched}}, nil},
		{"fail without note", hApplying, Fail{Actor: sched, At: at(12)}, nil, invalid("note")},
		{"fail a finished run", hFinished, Fail{Note: "late", Actor: sched, At: at(13)}, nil, illegal(Finished, "")},
		{"finish a task", hPerforming, Finish{Actor: worker, At: at(6)},
			[]Event{RunFinished{StackID: stackID, WorkerID: worker, At: at(6), Actor: worker}}, nil},
		{"finish while planning", hPlanning, Finish{Actor: worker, At: at(6)}, nil, illegal(Planning, "")},

		// Commands may come as pointers, as a decoder would produce them.
		{"pointer command", hQueued, &MarkReady{Actor: sched, At: at(1)},
			[]Event{RunReady{At: at(1), Actor: sched}}, nil},
		{"nil command", hQueued, nil, nil, invalid("command")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := given(tc.given...)
			got, err := decide(t, s, tc.cmd)
			checkErr(t, err, tc.err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

// Decide must not change the state it was given, even through shared slices.
func TestDecideLeavesStateAlone(t *testing.T) {
	s := given(hPlanning...)
	before := s.History()
	if _, err := Decide(s, PhaseFinished{Phase: PhasePlanning, HasChanges: true, Actor: worker, At: at(7)}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.History(), before) || s.Status() != Planning {
		t.Error("Decide modified its input")
	}
}

func TestStartPhaseAfterStopRequestIsErrStopPending(t *testing.T) {
	s := given(join(hInitializing, []Event{RunStopRequested{Actor: user, At: at(5)}})...)
	_, err := Decide(s, StartPhase{Phase: PhasePlanning, Actor: worker, At: at(5)})
	if !errors.Is(err, ErrStopPending) || !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("err = %v, want ErrStopPending and ErrIllegalTransition", err)
	}
	if _, err := Decide(given(hReadyAssigned...), StartPhase{Phase: PhasePlanning, Actor: worker, At: at(3)}); errors.Is(err, ErrStopPending) {
		t.Fatalf("an illegal start without a stop request matches ErrStopPending: %v", err)
	}
}
