package scheduler_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/services/server/scheduler"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

func TestMain(m *testing.M) {
	testenv.MainNoLeaks(m)
}

func TestConfigValidate(t *testing.T) {
	_, err := scheduler.New(scheduler.Config{SweepInterval: -1})
	if err == nil {
		t.Fatal("New accepted a config without pool, store and NATS")
	}
	for _, want := range []string{"pool is required", "store is required", "NATS connection is required", "sweep interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// One idle worker takes READY runs one at a time: tracked runs and tasks
// first, then proposed runs, then drift detection, first queued first
// within each class, whatever order they were queued in.
func TestPriorityAndFIFO(t *testing.T) {
	e := newEnv(t)
	const pool = "wp_prio"
	at := func(s int) time.Time { return e.t0.Add(time.Duration(s) * time.Second) }
	kinds := []struct {
		typ   run.Type
		drift bool
	}{
		{run.Proposed, true}, {run.Proposed, false}, {run.Tracked, false}, {run.Task, false},
		{run.Proposed, false}, {run.Tracked, false}, {run.Proposed, true}, {run.Task, false},
	}
	ids := make([]string, len(kinds))
	for i, k := range kinds {
		// Tracked runs and tasks hold their stack's lock: one stack each.
		ids[i] = e.readyRun(e.createStack(pool), k.typ, k.drift, at(i))
	}
	want := []string{ids[2], ids[3], ids[5], ids[7], ids[1], ids[4], ids[0], ids[6]}
	e.waitReadModel(ids...)

	e.startScheduler("scheduler")
	w := e.registerWorker(pool)
	in := e.listen(pool, []string{w}, true)

	got := in.waitFor(len(ids), 30*time.Second)
	var order []string
	for _, a := range got {
		if a.WorkerID != w || a.PoolID != pool {
			t.Errorf("run %s went to %s/%s, want %s/%s", a.RunID, a.PoolID, a.WorkerID, pool, w)
		}
		order = append(order, a.RunID)
	}
	if !slices.Equal(order, want) {
		t.Errorf("assignment order\n got  %s\n want %s", short(order), short(want))
	}
}

// A drained worker gets nothing, a busy worker nothing until its run
// finished, and runs only go to workers of their own pool.
func TestDrainedBusyAndPools(t *testing.T) {
	e := newEnv(t)
	const poolA, poolB = "wp_a", "wp_b"
	stackA, stackB := e.createStack(poolA), e.createStack(poolB)

	drained := e.registerWorker(poolA)
	e.workerCommand(drained, worker.Drain{Actor: actor, At: e.at()})
	busy := e.registerWorker(poolA)
	// busy holds run x, assigned before any scheduler ran.
	x := e.readyRun(stackA, run.Proposed, false, e.at())
	e.assign(x, busy, poolA)
	other := e.registerWorker(poolB)
	r := e.readyRun(stackA, run.Tracked, false, e.at())
	e.waitReadModel(r)
	await.Until(t, 20*time.Second, "the read model to show the workers", func() bool {
		var n int
		if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM rm_workers WHERE (id = $1 AND drained) OR (id = $2 AND run_id = $3) OR id = $4`,
			drained, busy, x, other).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 3
	})
	inA := e.listen(poolA, nil, false)
	inB := e.listen(poolB, nil, false)

	s := e.startScheduler("scheduler")
	waitPasses(t, s, 3)
	if st, _ := loadRun(t, e.store, r); st.WorkerID() != "" {
		t.Fatalf("run %s was assigned to %s although the only idle worker is in another pool", r, st.WorkerID())
	}
	if got := append(inA.assignments(), inB.assignments()...); len(got) != 0 {
		t.Fatalf("assignments sent with no worker free: %+v", got)
	}

	// The busy worker finishes x: it takes r.
	if err := finish(t.Context(), e.store, x, busy); err != nil {
		t.Fatal(err)
	}
	got := inA.waitFor(1, 10*time.Second)
	if got[0].RunID != r || got[0].WorkerID != busy {
		t.Fatalf("assignment %+v, want run %s on worker %s", got[0], r, busy)
	}
	if st, _ := loadRun(t, e.store, r); st.WorkerID() != busy || st.PoolID() != poolA {
		t.Fatalf("run %s is on %s/%s, want %s/%s", r, st.PoolID(), st.WorkerID(), poolA, busy)
	}

	// busy is busy again and drained is drained: r2 waits until drained is undrained.
	r2 := e.readyRun(stackA, run.Proposed, false, e.at())
	e.waitReadModel(r2)
	waitPasses(t, s, 3)
	if st, _ := loadRun(t, e.store, r2); st.WorkerID() != "" {
		t.Fatalf("run %s went to %s while every worker of its pool was busy or drained", r2, st.WorkerID())
	}
	e.workerCommand(drained, worker.Undrain{Actor: actor, At: e.at()})
	got = inA.waitFor(2, 10*time.Second)
	if got[1].RunID != r2 || got[1].WorkerID != drained {
		t.Fatalf("assignment %+v, want run %s on the undrained worker %s", got[1], r2, drained)
	}

	// Pool B's worker takes pool B's run, and only that.
	r3 := e.readyRun(stackB, run.Proposed, false, e.at())
	gotB := inB.waitFor(1, 10*time.Second)
	if gotB[0].RunID != r3 || gotB[0].WorkerID != other {
		t.Fatalf("pool B assignment %+v, want run %s on %s", gotB[0], r3, other)
	}
	if n := len(inA.assignments()) + len(inB.assignments()); n != 3 {
		t.Errorf("%d assignments, want 3", n)
	}
}

// assign records that worker took runID (as a scheduler would).
func (e *env) assign(runID, workerID, pool string) {
	e.t.Helper()
	rs, rv := loadRun(e.t, e.store, runID)
	ws, wv := loadWorker(e.t, e.store, workerID)
	at := e.at()
	e.append(
		batch(runStreamOf(runID), rv, must[run.Event](e.t)(run.Decide(rs, run.Assign{WorkerID: workerID, PoolID: pool, Actor: actor, At: at}))),
		batch(workerStreamOf(workerID), wv, must[worker.Event](e.t)(worker.Decide(ws, worker.AssignRun{RunID: runID, Actor: actor, At: at}))))
}

// The assigned worker learns of its run at once, on its own subject, with
// what it needs to start.
func TestAssignmentIsPushedToTheWorker(t *testing.T) {
	e := newEnv(t)
	const pool = "wp_push"
	stk := e.createStack(pool)
	s := e.startScheduler("scheduler")
	w := e.registerWorker(pool)
	nc := e.connect("launcher")
	sub, err := nc.SubscribeSync(protocol.WorkerSubject(pool, w, protocol.KindAssign))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r := e.readyRun(stk, run.Task, false, e.at())
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no assignment on %s: %v", sub.Subject, err)
	}
	var a protocol.Assignment
	if err := jsonUnmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	st, v := loadRun(t, e.store, r)
	want := protocol.Assignment{RunID: r, StackID: stk, PoolID: pool, WorkerID: w, Type: run.Task, Status: run.Ready,
		Commit: commit, RunVersion: v, AssignedAt: a.AssignedAt}
	if a != want {
		t.Errorf("assignment\n got  %+v\n want %+v", a, want)
	}
	if st.WorkerID() != w || a.AssignedAt.IsZero() {
		t.Errorf("run on worker %q, assigned at %v", st.WorkerID(), a.AssignedAt)
	}
	if s.Assigned() != 1 {
		t.Errorf("scheduler counted %d assignments, want 1", s.Assigned())
	}
}

// A confirmed run waits for a worker again, to apply its saved plan: any
// idle worker of the pool takes it, and learns that it is CONFIRMED.
func TestConfirmedRunIsAssignedToApply(t *testing.T) {
	e := newEnv(t)
	const pool = "wp_confirm"
	stk := e.createStack(pool)
	planner := e.registerWorker(pool)
	r := e.readyRun(stk, run.Tracked, false, e.at())
	e.assign(r, planner, pool)
	// The planner plans, finds changes, saves the workspace and leaves.
	st, v := loadRun(t, e.store, r)
	at := e.at()
	events := decideAll(t, &st,
		run.StartPhase{Phase: run.PhasePreparing, Actor: planner, At: at},
		run.StartPhase{Phase: run.PhaseInitializing, Actor: planner, At: at},
		run.StartPhase{Phase: run.PhasePlanning, Actor: planner, At: at},
		run.PhaseFinished{Phase: run.PhasePlanning, HasChanges: true, Actor: planner, At: at})
	ws, wv := loadWorker(t, e.store, planner)
	e.append(batch(runStreamOf(r), v, events),
		batch(workerStreamOf(planner), wv, must[worker.Event](t)(worker.Decide(ws, worker.RunFinished{RunID: r, Actor: planner, At: at}))))
	e.workerCommand(planner, worker.Drain{Actor: actor, At: e.at()}) // the applier must be another worker
	if st.Status() != run.Unconfirmed {
		t.Fatalf("run is %s, want UNCONFIRMED", st.Status())
	}

	s := e.startScheduler("scheduler")
	applier := e.registerWorker(pool)
	in := e.listen(pool, nil, false)
	waitPasses(t, s, 3)
	if n := len(in.assignments()); n != 0 {
		t.Fatalf("%d assignments of an UNCONFIRMED run", n)
	}
	st, v = loadRun(t, e.store, r)
	e.append(batch(runStreamOf(r), v, decideAll(t, &st, run.Confirm{Actor: actor, At: e.at()})))
	got := in.waitFor(1, 10*time.Second)
	if got[0].RunID != r || got[0].WorkerID != applier || got[0].Status != run.Confirmed {
		t.Fatalf("assignment %+v, want run %s CONFIRMED on %s", got[0], r, applier)
	}
}

// Nothing depends on a message: with no event relayed to NATS at all, the
// sweep still finds the READY run and the idle worker.
func TestSweepWithoutEvents(t *testing.T) {
	e := newEnvRelay(t, false)
	const pool = "wp_sweep"
	s := e.startScheduler("scheduler")
	w := e.registerWorker(pool)
	in := e.listen(pool, nil, false)
	r := e.readyRun(e.createStack(pool), run.Proposed, true, e.at())
	got := in.waitFor(1, 20*time.Second)
	if got[0].RunID != r || got[0].WorkerID != w {
		t.Fatalf("assignment %+v, want run %s on %s", got[0], r, w)
	}
	if s.Passes() < 2 {
		t.Errorf("assigned after %d passes: a wake-up came from somewhere", s.Passes())
	}
}
