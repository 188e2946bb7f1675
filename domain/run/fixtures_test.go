package run

import (
	"slices"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/eventtest"
)

const (
	runID   = "run_01JTEST"
	stackID = "stk_01JTEST"
	worker  = "wkr_01"
	worker2 = "wkr_02"
	pool    = "wp_01"
	user    = "user:alice"
	sched   = "system:scheduler"
	sha     = "0123456789abcdef0123456789abcdef01234567"
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

// decide calls Decide and checks that every event it returns survives the
// event store's JSON encoding.
func decide(t *testing.T, s State, c Command) ([]Event, error) {
	t.Helper()
	events, err := Decide(s, c)
	for _, e := range events {
		eventtest.RoundTrip(t, e)
	}
	return events, err
}

func queued(typ Type) RunQueued {
	q := RunQueued{RunID: runID, StackID: stackID, Type: typ, Commit: sha, At: at(0), Actor: user}
	if typ == Task {
		q.TaskCommand = "terraform state list"
	}
	return q
}

func started(p Phase, minute int) RunPhaseStarted {
	return RunPhaseStarted{Phase: p, At: at(minute), Actor: worker}
}

func phaseDone(p Phase, minute int, changes bool) RunPhaseFinished {
	return RunPhaseFinished{Phase: p, Duration: time.Minute, HasChanges: changes, At: at(minute), Actor: worker}
}

// join concatenates event lists without sharing backing arrays between fixtures.
func join(lists ...[]Event) []Event { return slices.Concat(lists...) }

// Event histories that bring a run to each status: TRACKED, no autodeploy,
// unless the name says otherwise.
var (
	hQueued         = []Event{queued(Tracked)}
	hReady          = join(hQueued, []Event{RunReady{At: at(1), Actor: sched}})
	hReadyAssigned  = join(hReady, []Event{RunAssigned{WorkerID: worker, PoolID: pool, At: at(2), Actor: sched}})
	hPreparing      = join(hReadyAssigned, []Event{started(PhasePreparing, 3)})
	hInitializing   = join(hPreparing, []Event{phaseDone(PhasePreparing, 4, false), started(PhaseInitializing, 4)})
	hPlanning       = join(hInitializing, []Event{phaseDone(PhaseInitializing, 5, false), started(PhasePlanning, 5)})
	hPlanningStop   = join(hPlanning, []Event{RunStopRequested{WorkerID: worker, At: at(6), Actor: user}})
	hUnconfirmed    = join(hPlanning, []Event{phaseDone(PhasePlanning, 7, true), RunUnconfirmed{WorkerID: worker, At: at(7), Actor: worker}})
	hConfirmed      = join(hUnconfirmed, []Event{RunConfirmed{At: at(8), Actor: user}})
	hConfirmedAssig = join(hConfirmed, []Event{RunAssigned{WorkerID: worker2, PoolID: pool, At: at(9), Actor: sched}})
	hPreparingApply = join(hConfirmedAssig, []Event{started(PhasePreparingApply, 10)})
	hApplying       = join(hPreparingApply, []Event{phaseDone(PhasePreparingApply, 11, false), started(PhaseApplying, 11)})
	hPerforming     = []Event{queued(Task), RunReady{At: at(1), Actor: sched},
		RunAssigned{WorkerID: worker, PoolID: pool, At: at(2), Actor: sched},
		started(PhasePreparing, 3), started(PhaseInitializing, 4), started(PhasePerforming, 5)}
	hFinished  = join(hApplying, []Event{RunFinished{StackID: stackID, WorkerID: worker2, At: at(12), Actor: worker2}})
	hFailed    = join(hQueued, []Event{RunFailed{StackID: stackID, Note: "boom", At: at(1), Actor: sched}})
	hDiscarded = join(hQueued, []Event{RunDiscarded{StackID: stackID, At: at(1), Actor: user}})
	hStopped   = join(hPlanningStop, []Event{RunStopped{StackID: stackID, WorkerID: worker, At: at(7), Actor: worker}})
	hCanceled  = join(hQueued, []Event{RunCanceled{StackID: stackID, At: at(1), Actor: user}})
	hSkipped   = join(hQueued, []Event{RunSkipped{StackID: stackID, At: at(1), Actor: sched}})
)

// Histories of the day-two transitions: a replan, and a destroy run.
var (
	hReplanRequested = join(hUnconfirmed, []Event{RunReplanRequested{At: at(8), Actor: user}})
	hDestroyPlanning = join([]Event{RunQueued{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Destroy: true, At: at(0), Actor: user}},
		hPlanning[1:])
	hDestroyPreparingApply = join(hDestroyPlanning, hPreparingApply[len(hPlanning):])
	hDestroying            = join(hDestroyPreparingApply, []Event{phaseDone(PhasePreparingApply, 11, false), started(PhaseDestroying, 11)})
)

func eventTypes(events []Event) []string {
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.EventType()
	}
	return names
}
