package gateway_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// run.job answers the assigned worker only, with the run and its stack.
func TestRunJobGoesToTheAssignedWorkerOnly(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	owner, intruder := l.register(nil), l.register(nil)
	stackID := e.createStack(pool)
	runID := e.assignedRun(stackID, run.Tracked, pool, owner)

	r := l.mustReport(protocol.KindRunJob, protocol.RunReport{WorkerID: owner, RunID: runID})
	j := r.Job
	if j == nil || j.RunID != runID || j.StackID != stackID || j.Type != run.Tracked || j.RepositoryURL != "file:///srv/repo" ||
		j.Tool == "" || j.Confirmed || j.ManagedState {
		t.Fatalf("job %+v", j)
	}
	if r := l.report(protocol.KindRunJob, protocol.RunReport{WorkerID: intruder, RunID: runID}); r.OK || r.Code != protocol.CodeNotYours {
		t.Fatalf("intruder's run.job: %+v", r)
	}
	if r := l.report(protocol.KindRunJob, protocol.RunReport{WorkerID: owner, RunID: "bad id"}); r.OK || r.Code != protocol.CodeInvalid {
		t.Fatalf("bad run id: %+v", r)
	}
	// The stack's state is not managed: no credentials, and no error.
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: owner, RunID: runID, Phase: run.PhasePreparing})
	r = l.mustReport(protocol.KindPhaseCredentials, protocol.PhaseStartedReport{WorkerID: owner, RunID: runID, Phase: run.PhaseInitializing})
	if r.StateCredentials != nil {
		t.Fatalf("credentials for an unmanaged stack: %d bytes", len(r.StateCredentials))
	}
}

// A stop request and a pool cycle, as the relay publishes them, reach the
// worker's and the pool's subjects.
func TestStopAndCycleAreForwardedToWorkers(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	worker := l.register(nil)
	stops, err := l.nc.SubscribeSync(protocol.WorkerSubject(pool, worker, protocol.KindStop))
	if err != nil {
		t.Fatal(err)
	}
	cycles, err := l.nc.SubscribeSync(protocol.BroadcastSubject(pool))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	relayed := func(streamType, streamID string, event interface{ EventType() string }) {
		t.Helper()
		payload, _ := json.Marshal(event)
		ev := eventstore.Event{StreamType: streamType, StreamID: streamID, Type: event.EventType(), Payload: payload}
		data, _ := json.Marshal(ev)
		if err := e.service().Publish(eventstore.Subject(ev), data); err != nil {
			t.Fatal(err)
		}
	}
	relayed(eventstore.StreamRun, "run_000777", run.RunStopRequested{WorkerID: worker, PoolID: pool, Note: "wrong branch", Actor: "user:x", At: time.Now()})
	m, err := stops.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no stop message: %v", err)
	}
	var stop protocol.StopMessage
	if err := json.Unmarshal(m.Data, &stop); err != nil || stop.RunID != "run_000777" || stop.Note != "wrong branch" {
		t.Fatalf("stop message %s (%v)", m.Data, err)
	}
	relayed(eventstore.StreamWorkerPool, pool, workerpool.WorkerPoolCycleRequested{Actor: "user:x", At: time.Now()})
	m, err = cycles.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no cycle message: %v", err)
	}
	var b protocol.BroadcastMessage
	if err := json.Unmarshal(m.Data, &b); err != nil || b.Kind != protocol.BroadcastCycle {
		t.Fatalf("cycle message %s (%v)", m.Data, err)
	}
}

// phase.started with the previous phase's result records both in one
// append; when the next phase may not start (a stop is pending), neither.
func TestPhaseBoundaryIsOneReport(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Tracked, pool, w)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	_, before := loadRun(t, e.store, runID)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhaseInitializing,
		Finished: &protocol.PhaseFinishedReport{Phase: run.PhasePreparing, DurationMS: 40}})
	rs, after := loadRun(t, e.store, runID)
	if rs.Status() != run.Initializing || after != before+2 {
		t.Fatalf("run %s at version %d (was %d), want INITIALIZING two events later", rs.Status(), after, before)
	}
	if p := rs.PhaseResults(); len(p) != 1 || p[0].Phase != run.PhasePreparing || p[0].Duration != 40*time.Millisecond {
		t.Fatalf("phase results %+v", p)
	}

	rs, before = loadRun(t, e.store, runID)
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, Expected: before,
		Events: decide(t, &rs, run.Stop{Actor: "user:x", At: e.at()})})
	_, before = loadRun(t, e.store, runID)
	r := l.report(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning,
		Finished: &protocol.PhaseFinishedReport{Phase: run.PhaseInitializing}})
	if r.OK || r.Code != protocol.CodeStopRequested {
		t.Fatalf("reply %+v, want %s", r, protocol.CodeStopRequested)
	}
	if _, now := loadRun(t, e.store, runID); now != before {
		t.Fatalf("a refused boundary changed the run: version %d → %d", before, now)
	}
}

// run.finished with the last phase's result records both, frees the
// worker and releases the stack, in one append.
func TestRunFinishedCarriesTheLastPhase(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Tracked, pool, w) // autodeploy
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhaseInitializing,
		Finished: &protocol.PhaseFinishedReport{Phase: run.PhasePreparing}})
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning,
		Finished: &protocol.PhaseFinishedReport{Phase: run.PhaseInitializing}})
	if r := l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning, HasChanges: true}); r.RunStatus != run.Applying {
		t.Fatalf("after the plan the run is %s, want APPLYING", r.RunStatus)
	}
	l.mustReport(protocol.KindRunFinished, protocol.RunReport{WorkerID: w, RunID: runID,
		Finished: &protocol.PhaseFinishedReport{Phase: run.PhaseApplying, DurationMS: 7}})
	rs, _ := loadRun(t, e.store, runID)
	if rs.Status() != run.Finished || len(rs.PhaseResults()) != 4 || rs.PhaseResults()[3].Phase != run.PhaseApplying {
		t.Fatalf("run %s with results %+v", rs.Status(), rs.PhaseResults())
	}
	if ws, _ := loadWorker(t, e.store, w); ws.RunID() != "" {
		t.Fatalf("the worker still holds %s", ws.RunID())
	}
}

// The answer to a heartbeat names the worker's run whose stop was
// requested, for a launcher that missed the stop message.
func TestHeartbeatCarriesAPendingStop(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Tracked, pool, w)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	proj, err := projections.NewProjector(projections.Config{Pool: e.db, Store: e.store, NATS: e.service()})
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := l.heartbeat(w); !r.OK || r.StopRunID != "" {
		t.Fatalf("heartbeat before the stop: %+v", r)
	}
	rs, v := loadRun(t, e.store, runID)
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, Expected: v,
		Events: decide(t, &rs, run.Stop{Actor: "user:x", At: e.at()})})
	if err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := l.heartbeat(w); !r.OK || r.StopRunID != runID {
		t.Fatalf("heartbeat after the stop: %+v, want stop_run_id %s", r, runID)
	}
}

// A run assigned to a worker and not started for a while comes with the
// answer to the worker's heartbeat, for a launcher that missed the
// assignment message; a started run does not.
func TestHeartbeatCarriesAMissedAssignment(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Tracked, pool, w)
	proj, err := projections.NewProjector(projections.Config{Pool: e.db, Store: e.store, NATS: e.service()})
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := l.heartbeat(w); !r.OK || r.AssignedRunID != "" {
		t.Fatalf("heartbeat right after the assignment: %+v, want nothing (the message is on its way)", r)
	}
	e.clock.advance(11 * time.Second)
	if r := l.heartbeat(w); !r.OK || r.AssignedRunID != runID {
		t.Fatalf("heartbeat 11 s after the assignment: %+v, want assigned_run_id %s", r, runID)
	}
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	if err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(11 * time.Second)
	if r := l.heartbeat(w); !r.OK || r.AssignedRunID != "" {
		t.Fatalf("heartbeat of a worker whose run started: %+v", r)
	}
}

// A cycle of the pool requested after a worker registered comes with the
// answer to its heartbeat; a worker registered after the cycle is not told.
func TestHeartbeatCarriesAMissedCycle(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	before := l.register(nil)
	proj, err := projections.NewProjector(projections.Config{Pool: e.db, Store: e.store, NATS: e.service()})
	if err != nil {
		t.Fatal(err)
	}
	catchUp := func() {
		t.Helper()
		if err := proj.CatchUp(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	catchUp()
	if r := l.heartbeat(before); !r.OK || r.Cycle {
		t.Fatalf("heartbeat before the cycle: %+v", r)
	}
	e.clock.advance(time.Second)
	var ps workerpool.State
	stored := stream(t, e.store, pool)
	for _, ev := range stored {
		ps.Apply(ev.(workerpool.Event))
	}
	pv := int64(len(stored))
	events, err := workerpool.Decide(ps, workerpool.Cycle{Actor: "user:x", At: e.at()})
	if err != nil {
		t.Fatal(err)
	}
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: pool}, Expected: pv, Events: toAny(events)})
	e.clock.advance(time.Second)
	after := l.register(nil)
	catchUp()
	if r := l.heartbeat(before); !r.OK || !r.Cycle {
		t.Fatalf("heartbeat of a worker registered before the cycle: %+v, want cycle", r)
	}
	if r := l.heartbeat(after); !r.OK || r.Cycle {
		t.Fatalf("heartbeat of a worker registered after the cycle: %+v", r)
	}
}
