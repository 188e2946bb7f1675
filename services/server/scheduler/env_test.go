package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/scheduler"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

const (
	actor  = "user:test"
	commit = "0123456789abcdef0123456789abcdef01234567"
)

// env is a migrated database with a store, an embedded NATS server, and a
// relay and a projector running until the test ends.
type env struct {
	t     testing.TB
	pool  *pgxpool.Pool
	store *eventstore.Store
	nats  *testenv.NATSServer
	seq   atomic.Int64
	t0    time.Time
}

func newEnv(t testing.TB) *env { return newEnvRelay(t, true) }

// newEnvRelay is newEnv; without relay, no event reaches NATS and only
// polling (the projector's catch-up, the scheduler's sweep) sees them.
func newEnvRelay(t testing.TB, relay bool) *env {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	pool, store := testenv.EventStore(t, reg)
	e := &env{t: t, pool: pool, store: store, nats: testenv.NATS(t), t0: time.Now().UTC().Truncate(time.Microsecond)}
	if relay {
		r, err := eventstore.NewRelay(pool, e.connect("relay"), eventstore.RelayConfig{PollInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		background(t, r)
	}
	projector, err := projections.NewProjector(projections.Config{Pool: pool, Store: store, NATS: e.connect("projector"),
		CatchUpInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	background(t, projector)
	return e
}

// connect opens a NATS connection closed when the test ends.
func (e *env) connect(name string) *nats.Conn {
	e.t.Helper()
	nc := e.nats.Connect(e.t, name)
	return nc
}

// background runs r until the test ends.
func background(t testing.TB, r interface{ Run(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// startScheduler runs a scheduler with its own NATS connection, aggregate
// repository and command layer, as a process of its own would, until the
// test ends.
func (e *env) startScheduler(name string) *scheduler.Scheduler {
	e.t.Helper()
	aggs := testenv.Aggregates(e.t, e.store)
	cmds, err := commands.NewSystem(commands.SystemConfig{Aggregates: aggs})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := scheduler.New(scheduler.Config{Pool: e.pool, Aggregates: aggs, Commands: cmds, NATS: e.connect(name),
		SweepInterval: 50 * time.Millisecond, Actor: "system:" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	background(e.t, s)
	return s
}

// at returns a distinct, increasing time for each call.
func (e *env) at() time.Time { return e.t0.Add(time.Duration(e.seq.Add(1)) * time.Millisecond) }

func (e *env) id(prefix string) string { return fmt.Sprintf("%s_%06d", prefix, e.seq.Add(1)) }

func (e *env) append(batches ...eventstore.Batch) [][]eventstore.Event {
	e.t.Helper()
	out, err := e.store.AppendAll(context.Background(), batches...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// must returns a function that fails the test on a domain error and
// otherwise returns the events as an append takes them:
// must[run.Event](t)(run.Decide(s, c)).
func must[E any](t testing.TB) func([]E, error) []any {
	return func(events []E, err error) []any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return toAny(events)
	}
}

// createStack creates a stack of pool.
func (e *env) createStack(pool string) string {
	e.t.Helper()
	id := e.id("stk")
	events := must[stack.Event](e.t)(stack.Decide(stack.State{}, stack.Create{StackID: id, Settings: stack.Settings{
		Name: id, RepositoryURL: "file:///srv/repo", WorkerPoolID: pool}, Actor: actor, At: e.at()}))
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamStack, ID: id}, Events: events})
	return id
}

// readyRun triggers a run queued at queuedAt and makes it READY.
func (e *env) readyRun(stackID string, typ run.Type, drift bool, queuedAt time.Time) string {
	e.t.Helper()
	id := e.id("run")
	trigger := run.Trigger{RunID: id, StackID: stackID, Type: typ, Commit: commit, Drift: drift, Actor: actor, At: queuedAt}
	if typ == run.Task {
		trigger.TaskCommand = "terraform state list"
	}
	var s run.State
	events := decideAll(e.t, &s, trigger, run.MarkReady{Actor: actor, At: queuedAt})
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamRun, ID: id}, Events: events})
	return id
}

// decideAll decides cmds on s one after another, applying each result.
func decideAll(t testing.TB, s *run.State, cmds ...run.Command) []any {
	t.Helper()
	var out []any
	for _, c := range cmds {
		events, err := run.Decide(*s, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, ev := range events {
			s.Apply(ev)
			out = append(out, ev)
		}
	}
	return out
}

// registerWorker registers a worker of pool.
func (e *env) registerWorker(pool string) string {
	e.t.Helper()
	id := e.id("wkr")
	e.registerWorkerID(id, pool)
	return id
}

// workerCommand decides c on the worker's current state and appends the result.
func (e *env) workerCommand(id string, c worker.Command) {
	e.t.Helper()
	st, v := loadWorker(e.t, e.store, id)
	events := must[worker.Event](e.t)(worker.Decide(st, c))
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamWorker, ID: id}, Expected: v, Events: events})
}

func loadWorker(t testing.TB, store *eventstore.Store, id string) (worker.State, int64) {
	t.Helper()
	var s worker.State
	v := int64(0)
	for _, ev := range decodeStream(t, store, id) {
		s.Apply(ev.data.(worker.Event))
		v = ev.Version
	}
	return s, v
}

func loadRun(t testing.TB, store *eventstore.Store, id string) (run.State, int64) {
	t.Helper()
	var s run.State
	v := int64(0)
	for _, ev := range decodeStream(t, store, id) {
		s.Apply(ev.data.(run.Event))
		v = ev.Version
	}
	return s, v
}

type decoded struct {
	eventstore.Event
	data any
}

func decodeStream(t testing.TB, store *eventstore.Store, id string) []decoded {
	t.Helper()
	stored, err := store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]decoded, len(stored))
	for i, ev := range stored {
		data, err := store.Registry().Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = decoded{ev, data}
	}
	return out
}

// finish does what a worker does with a run it was given, in one append:
// runs its phases to the end and frees itself.
func finish(ctx context.Context, store *eventstore.Store, runID, workerID string) error {
	var events []any
	var rs run.State
	stored, err := store.Load(ctx, runID)
	if err != nil {
		return err
	}
	for _, ev := range stored {
		data, err := store.Registry().Decode(ev)
		if err != nil {
			return err
		}
		rs.Apply(data.(run.Event))
	}
	runVersion := int64(len(stored))
	now := time.Now().UTC()
	cmds := []run.Command{run.StartPhase{Phase: run.PhasePreparing, Actor: workerID, At: now},
		run.StartPhase{Phase: run.PhaseInitializing, Actor: workerID, At: now}}
	if rs.Type() == run.Task {
		cmds = append(cmds, run.StartPhase{Phase: run.PhasePerforming, Actor: workerID, At: now},
			run.PhaseFinished{Phase: run.PhasePerforming, Actor: workerID, At: now},
			run.Finish{Actor: workerID, At: now})
	} else {
		cmds = append(cmds, run.StartPhase{Phase: run.PhasePlanning, Actor: workerID, At: now},
			run.PhaseFinished{Phase: run.PhasePlanning, Actor: workerID, At: now})
	}
	for _, c := range cmds {
		evs, err := run.Decide(rs, c)
		if err != nil {
			return fmt.Errorf("%T: %w", c, err)
		}
		for _, ev := range evs {
			rs.Apply(ev)
			events = append(events, ev)
		}
	}
	var ws worker.State
	wstored, err := store.Load(ctx, workerID)
	if err != nil {
		return err
	}
	for _, ev := range wstored {
		data, err := store.Registry().Decode(ev)
		if err != nil {
			return err
		}
		ws.Apply(data.(worker.Event))
	}
	wevs, err := worker.Decide(ws, worker.RunFinished{RunID: runID, Actor: workerID, At: now})
	if err != nil {
		return err
	}
	_, err = store.AppendAll(ctx,
		eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, Expected: runVersion, Events: events},
		eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamWorker, ID: workerID}, Expected: int64(len(wstored)), Events: toAny(wevs)})
	return err
}

func toAny[E any](events []E) []any {
	out := make([]any, len(events))
	for i, ev := range events {
		out[i] = ev
	}
	return out
}

// inbox records the assignments sent to some workers, and can play the
// workers: finish each run as soon as it arrives.
type inbox struct {
	t       testing.TB
	mu      sync.Mutex
	got     []protocol.Assignment
	subject map[string]string // run id → subject it arrived on
	changed chan struct{}
}

// listen subscribes to the assignments of the workers of pool. With
// finishRuns, each assigned run is finished right away, as a worker would.
func (e *env) listen(pool string, workers []string, finishRuns bool) *inbox {
	e.t.Helper()
	in := &inbox{t: e.t, subject: map[string]string{}, changed: make(chan struct{}, 1)}
	nc := e.connect("workers-" + pool)
	subjects := []string{protocol.WorkerSubjects(pool)}
	if workers != nil {
		subjects = subjects[:0]
		for _, w := range workers {
			subjects = append(subjects, protocol.WorkerSubject(pool, w, protocol.KindAssign))
		}
	}
	for _, subject := range subjects {
		_, err := nc.Subscribe(subject, func(m *nats.Msg) {
			var a protocol.Assignment
			if err := json.Unmarshal(m.Data, &a); err != nil {
				e.t.Errorf("assignment on %s: %v", m.Subject, err)
				return
			}
			if finishRuns {
				if err := finish(context.Background(), e.store, a.RunID, a.WorkerID); err != nil {
					e.t.Errorf("finish run %s on %s: %v", a.RunID, a.WorkerID, err)
				}
			}
			in.mu.Lock()
			in.got = append(in.got, a)
			in.subject[a.RunID] = m.Subject
			in.mu.Unlock()
			select {
			case in.changed <- struct{}{}:
			default:
			}
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (in *inbox) assignments() []protocol.Assignment {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]protocol.Assignment(nil), in.got...)
}

// waitFor waits until n assignments arrived.
func (in *inbox) waitFor(n int, within time.Duration) []protocol.Assignment {
	in.t.Helper()
	timeout := time.After(within)
	for {
		if got := in.assignments(); len(got) >= n {
			return got
		}
		if in.t.Failed() { // a worker could not finish its run: do not wait for the rest
			in.t.FailNow()
		}
		select {
		case <-in.changed:
		case <-timeout:
			in.t.Fatalf("%d assignments after %s, want %d", len(in.assignments()), within, n)
		}
	}
}

// waitReadModel waits until rm_runs shows every run in ids READY, so that
// a scheduler started next finds them all at once.
func (e *env) waitReadModel(ids ...string) {
	e.t.Helper()
	await.Until(e.t, 20*time.Second, "the read model to show the runs READY", func() bool {
		var n int
		err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM rm_runs WHERE id = ANY($1) AND status = 'READY'`, ids).Scan(&n)
		if err != nil {
			e.t.Fatal(err)
		}
		return n == len(ids)
	})
}

// waitPasses waits until s started n more passes than it had.
func waitPasses(t testing.TB, s *scheduler.Scheduler, n int64) {
	t.Helper()
	want := s.Passes() + n
	await.Until(t, 10*time.Second, fmt.Sprintf("%d scheduling passes", n), func() bool { return s.Passes() >= want })
}

func short(ids []string) string { return strings.Join(ids, ",") }

func batch(stream eventstore.Stream, expected int64, events []any) eventstore.Batch {
	return eventstore.Batch{Stream: stream, Expected: expected, Events: events}
}

func runStreamOf(id string) eventstore.Stream {
	return eventstore.Stream{Type: eventstore.StreamRun, ID: id}
}

func workerStreamOf(id string) eventstore.Stream {
	return eventstore.Stream{Type: eventstore.StreamWorker, ID: id}
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
