package gateway_test

import (
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// The plan's summary travels with the PLANNING result into the run's event;
// on any other phase it is refused and changes nothing.
func TestPlanSummaryTravelsWithThePlanningResult(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, w)

	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	r := l.report(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing,
		Plan: &run.PlanSummary{Add: 1}})
	if r.OK || r.Code != protocol.CodeInvalid {
		t.Fatalf("a plan summary with the PREPARING result: %+v, want refused as invalid", r)
	}
	l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	for _, phase := range []run.Phase{run.PhaseInitializing, run.PhasePlanning} {
		l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: phase})
		report := protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: phase}
		if phase == run.PhasePlanning {
			report.HasChanges, report.Plan = true, &run.PlanSummary{Add: 3, Change: 2, Destroy: 1}
		}
		l.mustReport(protocol.KindPhaseFinished, report)
	}
	rs, _ := loadRun(t, e.store, runID)
	if got, ok := rs.Plan(); rs.Status() != run.Finished || !ok || got != (run.PlanSummary{Add: 3, Change: 2, Destroy: 1}) {
		t.Fatalf("run %s with plan %+v (%v), want FINISHED with 3 to add, 2 to change, 1 to destroy", rs.Status(), got, ok)
	}
}
