package gateway_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

func TestMain(m *testing.M) {
	testenv.MainNoLeaks(m)
}

func TestRegisterTakesThePoolFromTheSubject(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	other, _ := e.createPool()

	// A pool named in the body is not a field of the protocol, and is ignored.
	r := l.mustReport(protocol.KindRegister, map[string]any{"metadata": map[string]string{"region": "eu-west-1"}, "pool_id": other})
	if !strings.HasPrefix(r.WorkerID, "wkr_") {
		t.Fatalf("worker id %q", r.WorkerID)
	}
	events := stream(t, e.store, r.WorkerID)
	if len(events) != 1 {
		t.Fatalf("events %+v", events)
	}
	reg, ok := events[0].(worker.WorkerRegistered)
	if !ok || reg.PoolID != pool || reg.WorkerID != r.WorkerID || !reflect.DeepEqual(reg.Metadata, map[string]string{"region": "eu-west-1"}) {
		t.Fatalf("registered %+v, want pool %s and the metadata", events[0], pool)
	}

	// A chosen id is kept, and cannot be registered twice.
	id := e.id("wkr")
	if r := l.mustReport(protocol.KindRegister, protocol.RegisterReport{WorkerID: id}); r.WorkerID != id {
		t.Fatalf("registered %q, want %q", r.WorkerID, id)
	}
	if r := l.report(protocol.KindRegister, protocol.RegisterReport{WorkerID: id}); r.OK || r.Code != protocol.CodeExists {
		t.Fatalf("second registration: %+v", r)
	}
	// Bad metadata is refused by the domain, and nothing is written.
	if r := l.report(protocol.KindRegister, protocol.RegisterReport{WorkerID: e.id("wkr"), Metadata: map[string]string{"bad key!": "x"}}); r.OK || r.Code != protocol.CodeInvalid {
		t.Fatalf("bad metadata: %+v", r)
	}
	if r := l.heartbeat(id); !r.OK {
		t.Fatalf("heartbeat of a registered worker: %+v", r)
	}
}

func TestReportForAnotherWorkersRunIsRefused(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	owner, intruder := l.register(nil), l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, owner)
	_, before := loadRun(t, e.store, runID)

	r := l.report(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: intruder, RunID: runID, Phase: run.PhasePreparing})
	if r.OK || r.Code != protocol.CodeNotYours || !strings.Contains(r.Error, runID) {
		t.Fatalf("reply %+v, want %s", r, protocol.CodeNotYours)
	}
	r = l.report(protocol.KindRunFailed, protocol.RunReport{WorkerID: intruder, RunID: runID, Note: "boom"})
	if r.OK || r.Code != protocol.CodeNotYours {
		t.Fatalf("reply %+v, want %s", r, protocol.CodeNotYours)
	}
	if r := l.report(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: owner, RunID: "run_nope", Phase: run.PhasePreparing}); r.OK || r.Code != protocol.CodeUnknown {
		t.Fatalf("unknown run: %+v", r)
	}
	if r := l.report(protocol.KindPhaseStarted, map[string]any{"worker_id": 7}); r.OK || r.Code != protocol.CodeInvalid {
		t.Fatalf("malformed body: %+v", r)
	}
	if _, after := loadRun(t, e.store, runID); after != before {
		t.Fatalf("run went from version %d to %d", before, after)
	}
	if ws, _ := loadWorker(t, e.store, intruder); ws.Status() != worker.Idle {
		t.Fatalf("intruder is %s", ws.Status())
	}
}

func TestProposedRunFinishesThroughReports(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(map[string]string{"os": "linux"})
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, w)

	for _, phase := range []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning} {
		l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: phase})
		if rs, _ := loadRun(t, e.store, runID); rs.Status() != phase.Status() {
			t.Fatalf("after starting %s the run is %s", phase, rs.Status())
		}
		l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: phase,
			DurationMS: 1500, HasChanges: phase == run.PhasePlanning})
	}
	rs, _ := loadRun(t, e.store, runID)
	if rs.Status() != run.Finished || rs.WorkerID() != "" {
		t.Fatalf("run is %s held by %q, want FINISHED", rs.Status(), rs.WorkerID())
	}
	results := rs.PhaseResults()
	if len(results) != 3 || results[2].Duration != 1500*time.Millisecond || !results[2].HasChanges {
		t.Fatalf("phase results %+v", results)
	}
	ws, _ := loadWorker(t, e.store, w)
	if ws.Status() != worker.Idle || ws.RunID() != "" {
		t.Fatalf("worker is %s with %q, want IDLE", ws.Status(), ws.RunID())
	}
	// The run's end and the worker's release are one append.
	runEvents, workerEvents := stream(t, e.store, runID), stream(t, e.store, w)
	finished, ok1 := runEvents[len(runEvents)-1].(run.RunFinished)
	freed, ok2 := workerEvents[len(workerEvents)-1].(worker.WorkerRunFinished)
	if !ok1 || !ok2 || !finished.At.Equal(freed.At) || freed.RunID != runID || finished.Actor != w {
		t.Fatalf("last run event %+v, last worker event %+v", runEvents[len(runEvents)-1], workerEvents[len(workerEvents)-1])
	}
	// A repeated report is refused: the run ended.
	r := l.report(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning})
	if r.OK || r.Code != protocol.CodeNotYours {
		t.Fatalf("repeated report: %+v", r)
	}
}

func TestTrackedRunEndReleasesTheStackLockToTheNextRun(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	stk := e.createStack(pool)
	first := e.assignedRun(stk, run.Tracked, pool, w)
	next := e.id("run")
	e.queuedRun(next, stk, run.Tracked)
	if rs, _ := loadRun(t, e.store, next); rs.Status() != run.Queued {
		t.Fatalf("second run is %s, want QUEUED behind the first", rs.Status())
	}

	for _, phase := range []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning} {
		l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: first, Phase: phase})
		l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: first, Phase: phase, HasChanges: phase == run.PhasePlanning})
	}
	// Autodeploy: planning with changes went on to APPLYING on the same worker.
	if rs, _ := loadRun(t, e.store, first); rs.Status() != run.Applying {
		t.Fatalf("run is %s, want APPLYING", rs.Status())
	}
	l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: first, Phase: run.PhaseApplying})
	l.mustReport(protocol.KindRunFinished, protocol.RunReport{WorkerID: w, RunID: first})

	if rs, _ := loadRun(t, e.store, first); rs.Status() != run.Finished {
		t.Fatalf("first run is %s", rs.Status())
	}
	if rs, _ := loadRun(t, e.store, next); rs.Status() != run.Ready {
		t.Fatalf("second run is %s, want READY with the lock", rs.Status())
	}
	if ss, _ := loadStack(t, e.store, stk); ss.LockHolder() != next {
		t.Fatalf("lock held by %q, want %s", ss.LockHolder(), next)
	}
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s", ws.Status())
	}

	// A failure reported by the worker ends the next run and frees the stack.
	e.assignRun(next, pool, w)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: next, Phase: run.PhasePreparing})
	l.mustReport(protocol.KindRunFailed, protocol.RunReport{WorkerID: w, RunID: next, Note: "could not clone"})
	if rs, _ := loadRun(t, e.store, next); rs.Status() != run.Failed {
		t.Fatalf("next run is %s", rs.Status())
	}
	if ss, _ := loadStack(t, e.store, stk); ss.LockHolder() != "" || len(ss.Queue()) != 0 {
		t.Fatalf("stack lock %q queue %v, want free", ss.LockHolder(), ss.Queue())
	}
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s", ws.Status())
	}
}

func TestSilentWorkersAreLost(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	stk := e.createStack(pool)
	unstarted, started, alive := l.register(nil), l.register(nil), l.register(nil)
	readyRun := e.assignedRun(stk, run.Proposed, pool, unstarted)
	startedRun := e.assignedRun(stk, run.Tracked, pool, started)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: started, RunID: startedRun, Phase: run.PhasePreparing})

	// Within the timeout nobody is lost; one worker heartbeats before the
	// others' silence exceeds it.
	e.clock.advance(timeout - 10*time.Second)
	if r := l.heartbeat(alive); !r.OK {
		t.Fatalf("heartbeat: %+v", r)
	}
	e.clock.advance(11 * time.Second)

	await.Until(t, 10*time.Second, "both silent workers are lost", func() bool {
		a, _ := loadWorker(t, e.store, unstarted)
		b, _ := loadWorker(t, e.store, started)
		return a.Status() == worker.Lost && b.Status() == worker.Lost
	})
	if ws, _ := loadWorker(t, e.store, alive); ws.Status() != worker.Idle {
		t.Fatalf("the heartbeating worker is %s", ws.Status())
	}
	rs, _ := loadRun(t, e.store, readyRun)
	if rs.Status() != run.Ready || rs.WorkerID() != "" {
		t.Fatalf("unstarted run is %s held by %q, want READY and unassigned", rs.Status(), rs.WorkerID())
	}
	rs, _ = loadRun(t, e.store, startedRun)
	history := rs.History()
	if rs.Status() != run.Failed || !strings.Contains(history[len(history)-1].Note, started) || !strings.Contains(history[len(history)-1].Note, "heartbeat") {
		t.Fatalf("started run is %s with %+v, want FAILED with a note", rs.Status(), history[len(history)-1])
	}
	if ss, _ := loadStack(t, e.store, stk); ss.LockHolder() != "" {
		t.Fatalf("stack still locked by %s", ss.LockHolder())
	}
	lost, _ := loadWorker(t, e.store, started)
	if lost.RunID() != startedRun || !strings.Contains(lost.GoneNote(), "no heartbeat") {
		t.Fatalf("lost worker: run %q note %q", lost.RunID(), lost.GoneNote())
	}
	// A lost worker's heartbeats and reports are refused: it must register again.
	if r := l.heartbeat(started); r.OK || r.Code != protocol.CodeGone {
		t.Fatalf("heartbeat of a lost worker: %+v", r)
	}
	if r := l.report(protocol.KindRunFailed, protocol.RunReport{WorkerID: started, RunID: startedRun, Note: "late"}); r.OK || r.Code != protocol.CodeGone {
		t.Fatalf("report of a lost worker: %+v", r)
	}
}

func TestExitHandsTheRunBack(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, w)
	l.mustReport(protocol.KindExit, protocol.ExitReport{WorkerID: w, Note: "launcher shutdown"})
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Exited || ws.GoneNote() != "launcher shutdown" {
		t.Fatalf("worker is %s (%q)", ws.Status(), ws.GoneNote())
	}
	if rs, _ := loadRun(t, e.store, runID); rs.Status() != run.Ready || rs.WorkerID() != "" {
		t.Fatalf("run is %s held by %q", rs.Status(), rs.WorkerID())
	}
	if r := l.heartbeat(w); r.Code != protocol.CodeGone {
		t.Fatalf("heartbeat after exit: %+v", r)
	}
}

func TestLauncherCannotActForAnotherPoolsWorker(t *testing.T) {
	e := newEnv(t)
	poolA, a := e.createPool()
	poolB, b := e.createPool()
	wB := b.register(nil)
	runID := e.assignedRun(e.createStack(poolB), run.Proposed, poolB, wB)
	_, before := loadRun(t, e.store, runID)

	// On its own pool's subject, A's launcher does not find B's worker.
	r := a.report(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: wB, RunID: runID, Phase: run.PhasePreparing})
	if r.OK || r.Code != protocol.CodeUnknown || !strings.Contains(r.Error, poolA) {
		t.Fatalf("reply %+v, want %s in %s", r, protocol.CodeUnknown, poolA)
	}
	if r := a.report(protocol.KindExit, protocol.ExitReport{WorkerID: wB}); r.OK || r.Code != protocol.CodeUnknown {
		t.Fatalf("exit of another pool's worker: %+v", r)
	}
	// B's subjects are closed to it: the publish is refused by NATS, and no
	// report arrives.
	if err := a.nc.Publish(protocol.ReportSubject(poolB, protocol.KindExit), []byte(`{"worker_id":"`+wB+`"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Nor can it keep B's worker alive.
	e.clock.advance(timeout / 2)
	if r := a.heartbeat(wB); r.OK || r.Code != protocol.CodeGone {
		t.Fatalf("heartbeat of another pool's worker: %+v", r)
	}
	if _, after := loadRun(t, e.store, runID); after != before {
		t.Fatalf("run went from version %d to %d", before, after)
	}
	if ws, _ := loadWorker(t, e.store, wB); ws.Status() != worker.Busy {
		t.Fatalf("B's worker is %s", ws.Status())
	}
	e.clock.advance(timeout/2 + time.Second)
	await.Until(t, 10*time.Second, "B's worker is lost despite A's heartbeats", func() bool {
		ws, _ := loadWorker(t, e.store, wB)
		return ws.Status() == worker.Lost
	})
}

func TestUnconfirmedRunFreesTheWorkerAndKeepsTheLock(t *testing.T) {
	e := newEnv(t)
	e.manual = true
	pool, l := e.createPool()
	w := l.register(nil)
	stk := e.createStack(pool)
	runID := e.assignedRun(stk, run.Tracked, pool, w)
	for _, phase := range []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning} {
		l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: phase})
		l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: phase, HasChanges: phase == run.PhasePlanning})
	}
	if rs, _ := loadRun(t, e.store, runID); rs.Status() != run.Unconfirmed {
		t.Fatalf("run is %s, want UNCONFIRMED", rs.Status())
	}
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s, want IDLE", ws.Status())
	}
	if ss, _ := loadStack(t, e.store, stk); ss.LockHolder() != runID {
		t.Fatalf("lock held by %q, want %s", ss.LockHolder(), runID)
	}
}

func TestAFailedPhaseCarriesTheWorkersNote(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, w)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhaseInitializing})
	l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhaseInitializing,
		ExitCode: 137, Note: "logs timeout: no output for 7m0s"})
	rs, _ := loadRun(t, e.store, runID)
	h := rs.History()
	if rs.Status() != run.Failed || len(h) == 0 || h[len(h)-1].Note != "INITIALIZING failed: logs timeout: no output for 7m0s (exit code 137)" {
		t.Fatalf("run is %s, history %+v", rs.Status(), h)
	}
}
