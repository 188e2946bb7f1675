package run

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/gantryhq/gantry/domain"
)

// outcome is what the lifecycle allows: the event types a command yields and
// the status the run is in afterwards.
type outcome struct {
	events []string
	to     Status
}

func allow(to Status, events ...string) outcome { return outcome{events: events, to: to} }

// The transition table, written once from SPEC.md "Run lifecycle". A row is a
// status (with the substate that matters: worker assigned, stop requested);
// every command not listed for a row must be refused with an
// *IllegalTransitionError naming the row's status.
var transitionTable = []struct {
	name    string
	status  Status
	history []Event
	allowed map[string]outcome
}{
	{"QUEUED", Queued, hQueued, map[string]outcome{
		"MarkReady": allow(Ready, "RunReady"),
		"Discard":   allow(Discarded, "RunDiscarded"),
		"Cancel":    allow(Canceled, "RunCanceled"),
		"Skip":      allow(Skipped, "RunSkipped"),
		"Fail":      allow(Failed, "RunFailed"),
	}},
	{"READY", Ready, hReady, map[string]outcome{
		"Assign":  allow(Ready, "RunAssigned"),
		"Discard": allow(Discarded, "RunDiscarded"),
		"Cancel":  allow(Canceled, "RunCanceled"),
		"Skip":    allow(Skipped, "RunSkipped"),
		"Fail":    allow(Failed, "RunFailed"),
	}},
	{"READY with worker", Ready, hReadyAssigned, map[string]outcome{
		"Unassign":              allow(Ready, "RunUnassigned"),
		"StartPhase(PREPARING)": allow(Preparing, "RunPhaseStarted"),
		"Discard":               allow(Discarded, "RunDiscarded"),
		"Cancel":                allow(Canceled, "RunCanceled"),
		"Skip":                  allow(Skipped, "RunSkipped"),
		"Fail":                  allow(Failed, "RunFailed"),
	}},
	{"PREPARING", Preparing, hPreparing, map[string]outcome{
		"StartPhase(INITIALIZING)": allow(Initializing, "RunPhaseStarted"),
		"PhaseFinished(PREPARING)": allow(Preparing, "RunPhaseFinished"),
		"HandBack":                 allow(Ready, "RunHandedBack"),
		"Stop":                     allow(Preparing, "RunStopRequested"),
		"Fail":                     allow(Failed, "RunFailed"),
	}},
	{"INITIALIZING", Initializing, hInitializing, map[string]outcome{
		"StartPhase(PLANNING)":        allow(Planning, "RunPhaseStarted"),
		"PhaseFinished(INITIALIZING)": allow(Initializing, "RunPhaseFinished"),
		"HandBack":                    allow(Ready, "RunHandedBack"),
		"Stop":                        allow(Initializing, "RunStopRequested"),
		"Fail":                        allow(Failed, "RunFailed"),
	}},
	{"PLANNING", Planning, hPlanning, map[string]outcome{
		"PhaseFinished(PLANNING)": allow(Finished, "RunPhaseFinished", "RunFinished"), // no changes
		"HandBack":                allow(Ready, "RunHandedBack"),
		"Stop":                    allow(Planning, "RunStopRequested"),
		"Fail":                    allow(Failed, "RunFailed"),
	}},
	{"PLANNING, stop requested", Planning, hPlanningStop, map[string]outcome{
		"PhaseFinished(PLANNING)": allow(Stopped, "RunPhaseFinished", "RunStopped"),
		"HandBack":                allow(Stopped, "RunStopped"), // the user's stop wins
		"Stop":                    allow(Planning),              // already requested: nothing new
		"MarkStopped":             allow(Stopped, "RunStopped"),
		"Fail":                    allow(Failed, "RunFailed"),
	}},
	{"UNCONFIRMED", Unconfirmed, hUnconfirmed, map[string]outcome{
		"Confirm": allow(Confirmed, "RunConfirmed"),
		"Discard": allow(Discarded, "RunDiscarded"),
		"Fail":    allow(Failed, "RunFailed"),
		"Replan":  allow(ReplanRequested, "RunReplanRequested"),
	}},
	{"REPLAN_REQUESTED", ReplanRequested, hReplanRequested, map[string]outcome{
		"MarkReady": allow(Ready, "RunReady"), // the saved workspace is gone: plan again
		"Replan":    allow(ReplanRequested),   // already requested: nothing new
		"Discard":   allow(Discarded, "RunDiscarded"),
		"Fail":      allow(Failed, "RunFailed"),
	}},
	{"CONFIRMED", Confirmed, hConfirmed, map[string]outcome{
		"Assign": allow(Confirmed, "RunAssigned"),
		"Fail":   allow(Failed, "RunFailed"),
	}},
	{"CONFIRMED with worker", Confirmed, hConfirmedAssig, map[string]outcome{
		"Unassign":                    allow(Confirmed, "RunUnassigned"),
		"StartPhase(PREPARING_APPLY)": allow(PreparingApply, "RunPhaseStarted"),
		"Fail":                        allow(Failed, "RunFailed"),
	}},
	{"PREPARING_APPLY", PreparingApply, hPreparingApply, map[string]outcome{
		"StartPhase(APPLYING)":           allow(Applying, "RunPhaseStarted"),
		"PhaseFinished(PREPARING_APPLY)": allow(PreparingApply, "RunPhaseFinished"),
		"HandBack":                       allow(Confirmed, "RunHandedBack"),
		"Fail":                           allow(Failed, "RunFailed"),
	}},
	{"PREPARING_APPLY (destroy)", PreparingApply, hDestroyPreparingApply, map[string]outcome{
		"StartPhase(DESTROYING)":         allow(Destroying, "RunPhaseStarted"),
		"PhaseFinished(PREPARING_APPLY)": allow(PreparingApply, "RunPhaseFinished"),
		"HandBack":                       allow(Confirmed, "RunHandedBack"), // nothing destroyed yet
		"Fail":                           allow(Failed, "RunFailed"),
	}},
	{"DESTROYING", Destroying, hDestroying, map[string]outcome{
		"PhaseFinished(DESTROYING)": allow(Destroying, "RunPhaseFinished"),
		"Finish":                    allow(Finished, "RunFinished"),
		"Fail":                      allow(Failed, "RunFailed"),
	}},
	{"APPLYING", Applying, hApplying, map[string]outcome{
		"RecordOutputs":           allow(Applying, "RunOutputsRecorded"),
		"PhaseFinished(APPLYING)": allow(Applying, "RunPhaseFinished"),
		"Finish":                  allow(Finished, "RunFinished"),
		"Fail":                    allow(Failed, "RunFailed"),
	}},
	{"PERFORMING (TASK)", Performing, hPerforming, map[string]outcome{
		"RecordOutputs":             allow(Performing, "RunOutputsRecorded"),
		"PhaseFinished(PERFORMING)": allow(Performing, "RunPhaseFinished"),
		"Finish":                    allow(Finished, "RunFinished"),
		"Stop":                      allow(Performing, "RunStopRequested"),
		"Fail":                      allow(Failed, "RunFailed"),
	}},
	{"FINISHED", Finished, hFinished, nil},
	{"FAILED", Failed, hFailed, nil},
	{"DISCARDED", Discarded, hDiscarded, nil},
	{"STOPPED", Stopped, hStopped, nil},
	{"CANCELED", Canceled, hCanceled, nil},
	{"SKIPPED", Skipped, hSkipped, nil},
}

// everyCommand is one valid instance of each command (each phase for the
// phase commands), named as IllegalTransitionError.Command names it.
func everyCommand() map[string]Command {
	cmds := map[string]Command{
		"MarkReady":     MarkReady{Actor: sched, At: at(30)},
		"Assign":        Assign{WorkerID: "wkr_03", PoolID: pool, Actor: sched, At: at(30)},
		"Unassign":      Unassign{Note: "worker lost", Actor: sched, At: at(30)},
		"HandBack":      HandBack{Note: "the worker pool was cycled", Actor: worker, At: at(30)},
		"Confirm":       Confirm{Actor: user, At: at(30)},
		"Replan":        Replan{Actor: user, At: at(30)},
		"Discard":       Discard{Actor: user, At: at(30)},
		"Cancel":        Cancel{Actor: user, At: at(30)},
		"Skip":          Skip{Note: "superseded", Actor: sched, At: at(30)},
		"Stop":          Stop{Actor: user, At: at(30)},
		"MarkStopped":   MarkStopped{Actor: worker, At: at(30)},
		"Fail":          Fail{Note: "timed out", Actor: sched, At: at(30)},
		"Finish":        Finish{Actor: worker, At: at(30)},
		"RecordOutputs": RecordOutputs{Outputs: []Output{{Name: "id", Value: json.RawMessage(`"i-1"`)}}, Actor: worker, At: at(30)},
	}
	for _, p := range Phases() {
		cmds["StartPhase("+string(p)+")"] = StartPhase{Phase: p, Actor: worker, At: at(30)}
		cmds["PhaseFinished("+string(p)+")"] = PhaseFinished{Phase: p, Actor: worker, At: at(30)}
	}
	return cmds
}

func TestTransitionTable(t *testing.T) {
	covered := map[Status]bool{}
	for _, row := range transitionTable {
		covered[row.status] = true
		s := given(row.history...)
		if s.Status() != row.status {
			t.Fatalf("%s: fixture history leads to %s", row.name, s.Status())
		}
		for name := range row.allowed {
			if _, ok := everyCommand()[name]; !ok {
				t.Errorf("%s: table names unknown command %q", row.name, name)
			}
		}
		for name, c := range everyCommand() {
			events, err := decide(t, s, c)
			want, ok := row.allowed[name]
			if !ok {
				var ite *IllegalTransitionError
				if !errors.As(err, &ite) || !errors.Is(err, ErrIllegalTransition) {
					t.Errorf("%s + %s: got events %v, err %v; want IllegalTransitionError", row.name, name, eventTypes(events), err)
					continue
				}
				if ite.From != row.status || ite.Command != name {
					t.Errorf("%s + %s: error names (%s, %s)", row.name, name, ite.From, ite.Command)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s + %s: unexpected error %v", row.name, name, err)
				continue
			}
			if got := eventTypes(events); !reflect.DeepEqual(got, append([]string{}, want.events...)) {
				t.Errorf("%s + %s: events %v, want %v", row.name, name, got, want.events)
			}
			after := s
			for _, e := range events {
				after.Apply(e)
			}
			if after.Status() != want.to {
				t.Errorf("%s + %s: status %s afterwards, want %s", row.name, name, after.Status(), want.to)
			}
		}
		// Trigger is the one command every existing run refuses the same way.
		_, err := decide(t, s, Trigger{RunID: runID, StackID: stackID, Type: Tracked, Commit: sha, Actor: user, At: at(30)})
		if !errors.Is(err, domain.ErrAlreadyExists) {
			t.Errorf("%s + Trigger: err %v, want ErrAlreadyExists", row.name, err)
		}
	}
	for _, st := range Statuses() {
		if !covered[st] {
			t.Errorf("status %s has no row in the transition table", st)
		}
	}
}
