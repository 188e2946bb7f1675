package run

import (
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/eventtest"
)

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "Run", Events())
}

// step drives the run through Decide and Apply, as the application layer will.
func step(t *testing.T, s *State, c Command) {
	t.Helper()
	events, err := decide(t, *s, c)
	if err != nil {
		t.Fatalf("%T: %v", c, err)
	}
	for _, e := range events {
		s.Apply(e)
	}
}

func TestTrackedLifecycle(t *testing.T) {
	var s State
	step(t, &s, Trigger{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Actor: user, At: at(0)})
	step(t, &s, MarkReady{Actor: sched, At: at(1)})
	step(t, &s, Assign{WorkerID: worker, PoolID: pool, Actor: sched, At: at(2)})
	if s.WorkerID() != worker || s.PoolID() != pool {
		t.Fatalf("assigned to %q in %q", s.WorkerID(), s.PoolID())
	}
	for i, p := range []Phase{PhasePreparing, PhaseInitializing} {
		step(t, &s, StartPhase{Phase: p, Actor: worker, At: at(3 + i)})
		step(t, &s, PhaseFinished{Phase: p, Duration: time.Second, Actor: worker, At: at(3 + i)})
	}
	step(t, &s, StartPhase{Phase: PhasePlanning, Actor: worker, At: at(5)})
	step(t, &s, PhaseFinished{Phase: PhasePlanning, Duration: time.Minute, HasChanges: true, Actor: worker, At: at(6)})
	if s.Status() != Unconfirmed || s.WorkerID() != "" || !s.HasChanges() {
		t.Fatalf("after plan: status %s, worker %q, changes %v", s.Status(), s.WorkerID(), s.HasChanges())
	}
	step(t, &s, Confirm{Actor: user, At: at(7)})
	step(t, &s, Assign{WorkerID: worker2, PoolID: pool, Actor: sched, At: at(8)})
	step(t, &s, StartPhase{Phase: PhasePreparingApply, Actor: worker2, At: at(9)})
	step(t, &s, StartPhase{Phase: PhaseApplying, Actor: worker2, At: at(10)})
	step(t, &s, PhaseFinished{Phase: PhaseApplying, Duration: 2 * time.Minute, Actor: worker2, At: at(12)})
	step(t, &s, Finish{Actor: worker2, At: at(13)})

	wantHistory := []HistoryEntry{
		{Queued, at(0), user, ""},
		{Ready, at(1), sched, ""},
		{Preparing, at(3), worker, ""},
		{Initializing, at(4), worker, ""},
		{Planning, at(5), worker, ""},
		{Unconfirmed, at(6), worker, ""},
		{Confirmed, at(7), user, ""},
		{PreparingApply, at(9), worker2, ""},
		{Applying, at(10), worker2, ""},
		{Finished, at(13), worker2, ""},
	}
	if got := s.History(); !reflect.DeepEqual(got, wantHistory) {
		t.Errorf("history\n got  %v\n want %v", got, wantHistory)
	}
	wantPhases := []PhaseResult{
		{PhasePreparing, 0, time.Second, false, at(3)},
		{PhaseInitializing, 0, time.Second, false, at(4)},
		{PhasePlanning, 0, time.Minute, true, at(6)},
		{PhaseApplying, 0, 2 * time.Minute, false, at(12)},
	}
	if got := s.PhaseResults(); !reflect.DeepEqual(got, wantPhases) {
		t.Errorf("phases\n got  %v\n want %v", got, wantPhases)
	}
	if !s.IsTerminal() || s.WorkerID() != "" || s.ID() != runID || s.StackID() != stackID ||
		s.Type() != Tracked || s.Commit() != sha || s.TriggeredBy() != user || !s.TriggeredAt().Equal(at(0)) {
		t.Errorf("accessors after finish: %+v", s)
	}
}

func TestAutodeployAndTaskAccessors(t *testing.T) {
	s := given(RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Autodeploy: true, At: at(0), Actor: user})
	if !s.Autodeploy() || s.DriftDetection() || s.TaskCommand() != "" {
		t.Errorf("tracked autodeploy run: %+v", s)
	}
	s = given(RunQueued{RunID: runID, StackID: stackID, Type: Proposed, Commit: sha, Drift: true, At: at(0), Actor: "system:drift"})
	if !s.DriftDetection() || s.Autodeploy() || s.Type() != Proposed {
		t.Errorf("drift run: %+v", s)
	}
	s = given(RunQueued{RunID: runID, StackID: stackID, Type: Proposed, Commit: sha, DeliveryID: "dlv_01", At: at(0), Actor: "vcs:gh"})
	if s.DeliveryID() != "dlv_01" {
		t.Errorf("webhook run: delivery %q", s.DeliveryID())
	}
	s = given(hPerforming...)
	if s.TaskCommand() != "terraform state list" || s.Status() != Performing || s.Type() != Task {
		t.Errorf("task run: %+v", s)
	}
}

func TestApplyRecordsNotesAndStopRequests(t *testing.T) {
	s := given(hPlanningStop...)
	if by, ok := s.StopRequested(); !ok || by != user {
		t.Errorf("stop requested = %q, %v", by, ok)
	}
	s.Apply(RunStopped{StackID: stackID, WorkerID: worker, Note: "stop requested by " + user, At: at(7), Actor: worker})
	h := s.History()
	if last := h[len(h)-1]; last != (HistoryEntry{Stopped, at(7), worker, "stop requested by " + user}) {
		t.Errorf("last history entry %+v", last)
	}
	if s.WorkerID() != "" {
		t.Errorf("stopped run still holds worker %q", s.WorkerID())
	}
	f := given(hFailed...)
	if h := f.History(); h[len(h)-1].Note != "boom" {
		t.Errorf("failure note not in history: %+v", h)
	}
	u := given(join(hReadyAssigned, []Event{RunUnassigned{WorkerID: worker, At: at(3), Actor: sched}})...)
	if u.WorkerID() != "" || u.PoolID() != "" || u.Status() != Ready {
		t.Errorf("unassigned run: worker %q pool %q status %s", u.WorkerID(), u.PoolID(), u.Status())
	}
	b := given(join(hPlanning, []Event{RunHandedBack{WorkerID: worker, To: Ready, Note: "cycled", At: at(6), Actor: worker}})...)
	if h := b.History(); b.WorkerID() != "" || b.PoolID() != "" || b.Status() != Ready || h[len(h)-1].Note != "cycled" {
		t.Errorf("handed back run: worker %q pool %q status %s history %+v", b.WorkerID(), b.PoolID(), b.Status(), h)
	}
	// Handed back, the run can be assigned and started again.
	if _, err := Decide(b, Assign{WorkerID: worker2, PoolID: pool, Actor: sched, At: at(7)}); err != nil {
		t.Errorf("assign a handed back run: %v", err)
	}
}

func TestApplyRecordsThePlanAndTheStopNote(t *testing.T) {
	s := given(hPlanning...)
	if _, ok := s.Plan(); ok {
		t.Fatal("a run that is still planning has a plan summary")
	}
	plan := &PlanSummary{Add: 1, Change: 2, Destroy: 3}
	s.Apply(RunPhaseFinished{Phase: PhasePlanning, HasChanges: true, Plan: plan, At: at(7), Actor: worker})
	plan.Add = 99 // the state keeps its own copy
	if got, ok := s.Plan(); !ok || got != (PlanSummary{Add: 1, Change: 2, Destroy: 3}) {
		t.Errorf("Plan() = %+v, %v", got, ok)
	}
	if got := (PlanSummary{Add: 1, Change: 2, Destroy: 3}).String(); got != "1 to add, 2 to change, 3 to destroy" {
		t.Errorf("String() = %q", got)
	}
	// A plan reported without a summary (an older worker) clears the previous one.
	s.Apply(RunPhaseFinished{Phase: PhasePlanning, HasChanges: true, At: at(8), Actor: worker})
	if _, ok := s.Plan(); ok {
		t.Error("a plan without a summary kept the previous summary")
	}

	s = given(join(hPlanning, []Event{RunStopRequested{WorkerID: worker, Note: "wrong branch", At: at(6), Actor: user}})...)
	if s.StopNote() != "wrong branch" {
		t.Errorf("StopNote() = %q", s.StopNote())
	}
}

func TestApplyAcceptsPointersAndIgnoresUnknownEvents(t *testing.T) {
	var byValue, byPointer State
	for _, e := range hReadyAssigned {
		byValue.Apply(e)
	}
	byPointer.Apply(&RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, At: at(0), Actor: user})
	byPointer.Apply(&RunReady{At: at(1), Actor: sched})
	byPointer.Apply(&RunAssigned{WorkerID: worker, PoolID: pool, At: at(2), Actor: sched})
	if !reflect.DeepEqual(byValue, byPointer) {
		t.Errorf("pointer events applied differently:\n %+v\n %+v", byPointer, byValue)
	}
	before := byValue
	byValue.Apply(unknownEvent{})
	byValue.Apply((*RunReady)(nil))
	if !reflect.DeepEqual(before, byValue) {
		t.Error("an unknown or nil event changed the state")
	}
}

type unknownEvent struct{}

func (unknownEvent) EventType() string { return "SomethingElse" }

// A State copied by value (as Decide receives it) must not see events applied
// to another copy.
func TestCopiesAreIndependent(t *testing.T) {
	a := given(hPlanning...)
	b := a
	a.Apply(RunFailed{StackID: stackID, Note: "a", At: at(9), Actor: sched})
	b.Apply(RunStopRequested{Actor: user, At: at(9)})
	b.Apply(RunStopped{StackID: stackID, Note: "b", At: at(9), Actor: worker})
	ha, hb := a.History(), b.History()
	if ha[len(ha)-1].Status != Failed || hb[len(hb)-1].Status != Stopped {
		t.Errorf("copies share history: a ends %v, b ends %v", ha[len(ha)-1], hb[len(hb)-1])
	}
	a.Apply(phaseDone(PhasePlanning, 9, true))
	b.Apply(phaseDone(PhasePlanning, 9, false))
	pa, pb := a.PhaseResults(), b.PhaseResults()
	if !pa[len(pa)-1].HasChanges || pb[len(pb)-1].HasChanges {
		t.Error("copies share phase results")
	}
}

func TestAssignedPoolsListsEachPoolOnce(t *testing.T) {
	s := given(join(hConfirmedAssig)...)
	if got := s.AssignedPools(); len(got) != 1 || got[0] != pool {
		t.Fatalf("AssignedPools = %v, want [%s]", got, pool)
	}
	s.Apply(RunUnassigned{At: at(10), Actor: sched})
	s.Apply(RunAssigned{WorkerID: worker, PoolID: "wp_other", At: at(11), Actor: sched})
	if got := s.AssignedPools(); len(got) != 2 || got[1] != "wp_other" || s.PoolID() != "wp_other" {
		t.Fatalf("AssignedPools = %v, PoolID %s", got, s.PoolID())
	}
	s.Apply(RunUnassigned{At: at(12), Actor: sched})
	s.Apply(RunAssigned{WorkerID: worker, PoolID: pool, At: at(13), Actor: sched})
	if got := s.AssignedPools(); len(got) != 2 || got[0] != "wp_other" || got[1] != pool {
		t.Fatalf("after a return to %s: AssignedPools = %v, want it last", pool, got)
	}
}
