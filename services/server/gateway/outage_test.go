package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// While the database is down no heartbeat can be recorded: the silence is
// not held against the workers, who are lost only once the timeout has run
// again with the database up. The launchers are told "internal" without a
// word about where the database is or who connects to it.
func TestDatabaseOutageIsNoSilence(t *testing.T) {
	pg := testenv.PostgresOfItsOwn(t, "gatewaydb")
	ctx := context.Background()
	db, err := eventstore.OpenPool(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := eventstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db, reg)
	t.Cleanup(store.Close)
	e := newEnvOn(t, db, store)
	_, l := e.createPool()
	w := l.register(nil)

	pg.Stop(t)
	r := l.heartbeat(w)
	if r.OK || r.Code != protocol.CodeInternal {
		t.Fatalf("heartbeat with the database down: %+v, want internal", r)
	}
	cfg, err := pgxpool.ParseConfig(pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{cfg.ConnConfig.Host, cfg.ConnConfig.User, cfg.ConnConfig.Database, "127.0.0.1", "5432", "dial", "SQLSTATE"} {
		if strings.Contains(r.Error, secret) {
			t.Errorf("the launcher was told %q, which names %q", r.Error, secret)
		}
	}
	if !strings.Contains(r.Error, "ref ") {
		t.Errorf("the launcher was told %q: want a reference to the server's log", r.Error)
	}
	rep := l.report(protocol.KindRunFailed, protocol.RunReport{WorkerID: w, RunID: "run_none", Note: "x"})
	if rep.Code != protocol.CodeInternal || strings.Contains(rep.Error, cfg.ConnConfig.Database) {
		t.Errorf("report with the database down: %+v", rep)
	}
	// The outage outlasts the heartbeat timeout.
	e.clock.advance(timeout + time.Minute)
	pg.Start(t)
	// A sweep finds the database back and the worker silent for longer
	// than the timeout, yet not lost: the silence was the outage's.
	if n, err := e.gw.Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("sweep right after the outage: %d lost, %v", n, err)
	}
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s right after the outage", ws.Status())
	}
	if r := l.heartbeat(w); !r.OK {
		t.Fatalf("heartbeat after the outage: %+v", r)
	}
	// Silent again, with the database up, for longer than the timeout: lost.
	e.clock.advance(timeout + time.Second)
	await.Until(t, 10*time.Second, "the silent worker to be lost", func() bool {
		ws, _ := loadWorker(t, e.store, w)
		return ws.Status() == worker.Lost
	})
}

// The gateway's NATS connection down: no heartbeat could arrive, so the
// silence does not count either.
func TestNATSOutageIsNoSilence(t *testing.T) {
	e := newEnv(t)
	_, l := e.createPool()
	w := l.register(nil)
	e.nats.Stop(t)
	// The clock moves only once the gateway's client has seen the outage:
	// a real one takes longer than that to run out a heartbeat timeout.
	await.Until(t, 15*time.Second, "the gateway to see NATS go", func() bool { return !e.gwNC.IsConnected() })
	e.clock.advance(timeout + time.Minute)
	e.nats.Start(t)
	e.nats.Bus().SetPoolVerifier(poolauth.New(e.aggs))
	await.Until(t, 15*time.Second, "the launcher to reconnect", func() bool { return l.nc.Status() == nats.CONNECTED })
	await.Until(t, 15*time.Second, "the gateway to answer again", func() bool {
		_, err := l.nc.Request(protocol.HeartbeatSubject(l.pool, w), nil, 500*time.Millisecond)
		return err == nil
	})
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s after the NATS outage", ws.Status())
	}
}

// A worker done with a run that the server still has in a phase on it, and
// with no report left to send, has dropped the run: the heartbeat settles
// it FAILED, releasing the worker and the stack. A worker that still works
// on it, or reports it, keeps it.
func TestHeartbeatSettlesADroppedRun(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	stk := e.createStack(pool)
	runID := e.assignedRun(stk, run.Tracked, pool, w)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	proj, err := projections.NewProjector(projections.Config{Pool: e.db, Store: e.store, NATS: e.service()})
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, hb := range []protocol.HeartbeatReport{{RunID: runID}, {RunID: runID, SettledRunID: runID}, {SettledRunID: "run_000000"}} {
		if r := request(t, l.nc, protocol.HeartbeatSubject(pool, w), hb); !r.OK {
			t.Fatalf("heartbeat %+v: %+v", hb, r)
		}
		if rs, _ := loadRun(t, e.store, runID); rs.Status() != run.Preparing {
			t.Fatalf("after heartbeat %+v the run is %s", hb, rs.Status())
		}
	}
	if r := request(t, l.nc, protocol.HeartbeatSubject(pool, w), protocol.HeartbeatReport{SettledRunID: runID}); !r.OK {
		t.Fatalf("heartbeat: %+v", r)
	}
	rs, _ := loadRun(t, e.store, runID)
	h := rs.History()
	if rs.Status() != run.Failed || !strings.Contains(h[len(h)-1].Note, "no report of its end") {
		t.Fatalf("dropped run is %s (%+v), want FAILED with a note", rs.Status(), h[len(h)-1])
	}
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s", ws.Status())
	}
	if ss, _ := loadStack(t, e.store, stk); ss.LockHolder() != "" {
		t.Fatalf("stack still locked by %s", ss.LockHolder())
	}
	if r := request(t, l.nc, protocol.HeartbeatSubject(pool, w), []byte("{")); r.Code != protocol.CodeInvalid {
		t.Fatalf("malformed heartbeat: %+v", r)
	}
}

// A cycled worker hands back a run that changed nothing yet: it waits
// READY for another worker, still holding its stack's lock.
func TestHandBackReturnsTheRunToTheQueue(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	stk := e.createStack(pool)
	runID := e.assignedRun(stk, run.Tracked, pool, w)
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePreparing})
	l.mustReport(protocol.KindRunHandedBack, protocol.RunReport{WorkerID: w, RunID: runID, Note: "the worker pool was cycled"})
	rs, _ := loadRun(t, e.store, runID)
	if rs.Status() != run.Ready || rs.WorkerID() != "" {
		t.Fatalf("handed back run is %s held by %q", rs.Status(), rs.WorkerID())
	}
	if ws, _ := loadWorker(t, e.store, w); ws.Status() != worker.Idle {
		t.Fatalf("worker is %s", ws.Status())
	}
	if ss, _ := loadStack(t, e.store, stk); ss.LockHolder() != runID {
		t.Fatalf("stack lock held by %q, want the run", ss.LockHolder())
	}
	// An apply cannot be handed back.
	applying := e.assignedRun(e.createStack(pool), run.Tracked, pool, w)
	for _, p := range []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning} {
		l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: applying, Phase: p})
	}
	l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: applying, Phase: run.PhasePlanning, HasChanges: true})
	if r := l.report(protocol.KindRunHandedBack, protocol.RunReport{WorkerID: w, RunID: applying}); r.Code != protocol.CodeIllegal {
		t.Fatalf("hand back an apply: %+v, want illegal", r)
	}
}

// A pool's reset ends its workers at once (their run back to READY) and
// tells the launchers still connected with the old secret.
func TestResetEndsThePoolsWorkers(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, w)
	broadcasts := make(chan *nats.Msg, 4)
	sub, err := l.nc.ChanSubscribe(protocol.BroadcastSubject(pool), broadcasts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := l.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	relay, err := eventstore.NewRelay(e.db, e.service(), eventstore.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(ctx) }()
	defer func() { cancel(); <-relayDone }()

	var ps workerpool.State
	stored := stream(t, e.store, pool)
	for _, ev := range stored {
		ps.Apply(ev.(workerpool.Event))
	}
	events, err := workerpool.Decide(ps, workerpool.Reset{Certificate: testenv.PoolCertificate(t, pool), SecretHash: "new-hash", Actor: actor, At: e.at()})
	if err != nil {
		t.Fatal(err)
	}
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: pool}, Expected: int64(len(stored)), Events: toAny(events)})
	select {
	case m := <-broadcasts:
		if !strings.Contains(string(m.Data), protocol.BroadcastReset) {
			t.Fatalf("broadcast %s", m.Data)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reset broadcast")
	}
	await.Until(t, 10*time.Second, "the worker to end", func() bool {
		ws, _ := loadWorker(t, e.store, w)
		return ws.Status() == worker.Exited && strings.Contains(ws.GoneNote(), "reset")
	})
	if rs, _ := loadRun(t, e.store, runID); rs.Status() != run.Ready || rs.WorkerID() != "" {
		t.Fatalf("run is %s held by %q", rs.Status(), rs.WorkerID())
	}
	if r := l.heartbeat(w); r.Code != protocol.CodeGone {
		t.Fatalf("heartbeat of a reset pool's worker: %+v", r)
	}
}
