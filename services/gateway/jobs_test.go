package gateway_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/bus"
	"github.com/gantryhq/gantry/services/gateway"
)

// run.job answers the assigned worker only, with the run and its stack.
func TestRunJobGoesToTheAssignedWorkerOnly(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	owner, intruder := l.register(nil), l.register(nil)
	stackID := e.createStack(pool)
	runID := e.assignedRun(stackID, run.Tracked, pool, owner)

	r := l.mustReport(gateway.KindRunJob, gateway.RunReport{WorkerID: owner, RunID: runID})
	j := r.Job
	if j == nil || j.RunID != runID || j.StackID != stackID || j.Type != run.Tracked || j.RepositoryURL != "file:///srv/repo" ||
		j.Tool == "" || j.Confirmed || j.ManagedState {
		t.Fatalf("job %+v", j)
	}
	if r := l.report(gateway.KindRunJob, gateway.RunReport{WorkerID: intruder, RunID: runID}); r.OK || r.Code != gateway.CodeNotYours {
		t.Fatalf("intruder's run.job: %+v", r)
	}
	if r := l.report(gateway.KindRunJob, gateway.RunReport{WorkerID: owner, RunID: "bad id"}); r.OK || r.Code != gateway.CodeInvalid {
		t.Fatalf("bad run id: %+v", r)
	}
	// The stack's state is not managed: no credentials, and no error.
	l.mustReport(gateway.KindPhaseStarted, gateway.PhaseStartedReport{WorkerID: owner, RunID: runID, Phase: run.PhasePreparing})
	r = l.mustReport(gateway.KindPhaseCredentials, gateway.PhaseStartedReport{WorkerID: owner, RunID: runID, Phase: run.PhaseInitializing})
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
	stops, err := l.nc.SubscribeSync(bus.WorkerSubject(pool, worker, gateway.KindStop))
	if err != nil {
		t.Fatal(err)
	}
	cycles, err := l.nc.SubscribeSync(bus.BroadcastSubject(pool))
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
	var stop gateway.StopMessage
	if err := json.Unmarshal(m.Data, &stop); err != nil || stop.RunID != "run_000777" || stop.Note != "wrong branch" {
		t.Fatalf("stop message %s (%v)", m.Data, err)
	}
	relayed(eventstore.StreamWorkerPool, pool, workerpool.WorkerPoolCycleRequested{Actor: "user:x", At: time.Now()})
	m, err = cycles.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no cycle message: %v", err)
	}
	var b gateway.BroadcastMessage
	if err := json.Unmarshal(m.Data, &b); err != nil || b.Kind != gateway.BroadcastCycle {
		t.Fatalf("cycle message %s (%v)", m.Data, err)
	}
}
