package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/gateway"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

const (
	actor   = "user:test"
	commit  = "0123456789abcdef0123456789abcdef01234567"
	timeout = 30 * time.Second
)

// env is a migrated database with its store, an embedded NATS whose pool
// launchers are checked against that store, and a gateway running on a
// clock the test moves.
type env struct {
	t     *testing.T
	db    *pgxpool.Pool
	store *eventstore.Store
	nats  *testenv.NATSServer
	clock *clock
	gw    *gateway.Gateway
	gwNC  *nats.Conn // the gateway's own NATS connection
	aggs  *aggregate.Repository
	seq   atomic.Int64
	// manual makes TRACKED runs wait for a confirmation instead of autodeploying.
	manual bool
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	db, store := testenv.EventStore(t, reg)
	return newEnvOn(t, db, store)
}

// newEnvOn is newEnv on a migrated database of the test's choosing.
func newEnvOn(t *testing.T, db *pgxpool.Pool, store *eventstore.Store) *env {
	t.Helper()
	n := testenv.NATS(t)
	aggs := testenv.Aggregates(t, store)
	n.Bus().SetPoolVerifier(poolauth.New(aggs))
	e := &env{t: t, db: db, store: store, nats: n, aggs: aggs, clock: &clock{now: time.Now().UTC().Truncate(time.Microsecond)}}
	nc := n.Connect(t, "gateway")
	cmds, err := commands.New(commands.Config{
		Aggregates: aggs, Waiter: noWaiter{t}, Secrets: unused{}, Pools: unused{},
		ServerURL: "http://gantry.test:1983", NATSURL: n.URL(), Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Pool: db, Commands: cmds, NATS: nc, HeartbeatTimeout: timeout,
		SweepInterval: 20 * time.Millisecond, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.gw, e.gwNC = g, nc
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		close(started)
		if err := g.Run(runCtx); err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	<-started
	// The gateway subscribes asynchronously: wait until a report is answered.
	probe := e.service()
	await.Until(t, 10*time.Second, "the gateway answers", func() bool {
		_, err := probe.Request(protocol.ReportSubject("wp_probe", "nothing"), []byte(`{}`), 200*time.Millisecond)
		return err == nil
	})
	return e
}

// noWaiter fails the test when waited on: worker reports must not wait
// for the read models.
type noWaiter struct{ t *testing.T }

func (w noWaiter) WaitFor(context.Context, eventstore.Cursor, ...string) error {
	w.t.Errorf("a worker report waited for the read models")
	return nil
}

// unused stands in for the command layer's secrets and pool authority,
// which worker reports never use.
type unused struct{}

var errUnused = errors.New("not available to the gateway's tests")

func (unused) Encrypt(context.Context, []byte) ([]byte, error) { return nil, errUnused }
func (unused) Decrypt(context.Context, []byte) ([]byte, error) { return nil, errUnused }
func (unused) Certify(context.Context, string, []byte) (workerpool.Certificate, error) {
	return workerpool.Certificate{}, errUnused
}
func (unused) NewSecret() (string, string, error)       { return "", "", errUnused }
func (unused) Token(commands.PoolToken) (string, error) { return "", errUnused }

func (e *env) id(prefix string) string { return fmt.Sprintf("%s_%06d", prefix, e.seq.Add(1)) }

func (e *env) at() time.Time { return e.clock.Now() }

// service connects with the services' credentials.
func (e *env) service() *nats.Conn {
	e.t.Helper()
	nc := e.nats.Connect(e.t, "test-service")
	return nc
}

// createPool creates a worker pool and returns a launcher connected with its credentials.
func (e *env) createPool() (string, *launcher) {
	e.t.Helper()
	pool := e.id("wp")
	secret := testenv.CreatePool(e.t, e.store, pool, actor)
	nc, err := nats.Connect(e.nats.URL(), bus.PoolCredentials(pool, secret), nats.Timeout(5*time.Second))
	if err != nil {
		e.t.Fatalf("connect as a launcher of %s: %v", pool, err)
	}
	e.t.Cleanup(nc.Close)
	return pool, &launcher{t: e.t, nc: nc, pool: pool}
}

// launcher is a pool launcher's NATS connection.
type launcher struct {
	t    *testing.T
	nc   *nats.Conn
	pool string
}

// report sends a report of the launcher's pool and returns the reply.
func (l *launcher) report(kind string, body any) protocol.Reply {
	l.t.Helper()
	return l.reportAs(l.pool, kind, body)
}

// reportAs sends a report on pool's subject.
func (l *launcher) reportAs(pool, kind string, body any) protocol.Reply {
	l.t.Helper()
	return request(l.t, l.nc, protocol.ReportSubject(pool, kind), body)
}

// mustReport sends a report that must be accepted.
func (l *launcher) mustReport(kind string, body any) protocol.Reply {
	l.t.Helper()
	r := l.report(kind, body)
	if !r.OK {
		l.t.Fatalf("%s %+v: refused: %s (%s)", kind, body, r.Error, r.Code)
	}
	return r
}

// heartbeat sends a heartbeat as a request and returns the reply.
func (l *launcher) heartbeat(workerID string) protocol.Reply {
	l.t.Helper()
	return request(l.t, l.nc, protocol.HeartbeatSubject(l.pool, workerID), nil)
}

func (l *launcher) register(metadata map[string]string) string {
	l.t.Helper()
	r := l.mustReport(protocol.KindRegister, protocol.RegisterReport{Metadata: metadata})
	return r.WorkerID
}

func request(t *testing.T, nc *nats.Conn, subject string, body any) protocol.Reply {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(subject, data, 5*time.Second)
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	var r protocol.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		t.Fatalf("reply %q: %v", msg.Data, err)
	}
	return r
}

func (e *env) append(batches ...eventstore.Batch) {
	e.t.Helper()
	if _, err := e.store.AppendAll(context.Background(), batches...); err != nil {
		e.t.Fatal(err)
	}
}

func toAny[E any](events []E) []any {
	out := make([]any, len(events))
	for i, ev := range events {
		out[i] = ev
	}
	return out
}

// createStack creates a stack of pool.
func (e *env) createStack(pool string) string {
	e.t.Helper()
	id := e.id("stk")
	events, err := stack.Decide(stack.State{}, stack.Create{StackID: id, Settings: stack.Settings{
		Name: id, RepositoryURL: "file:///srv/repo", WorkerPoolID: pool}, Actor: actor, At: e.at()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamStack, ID: id}, Events: toAny(events)})
	return id
}

// assignedRun appends what triggering, the lock queue and the scheduler
// would: a run of stackID queued, READY (for a TRACKED run, holding the
// stack lock) and assigned to workerID of pool.
func (e *env) assignedRun(stackID string, typ run.Type, pool, workerID string) string {
	e.t.Helper()
	id := e.id("run")
	e.queuedRun(id, stackID, typ)
	e.assignRun(id, pool, workerID)
	return id
}

// assignRun assigns a READY run to workerID of pool, as the scheduler does.
func (e *env) assignRun(id, pool, workerID string) {
	e.t.Helper()
	rs, rv := loadRun(e.t, e.store, id)
	if rs.Status() != run.Ready {
		e.t.Fatalf("run %s is %s, not READY", id, rs.Status())
	}
	ws, wv := loadWorker(e.t, e.store, workerID)
	runEvents, err := run.Decide(rs, run.Assign{WorkerID: workerID, PoolID: pool, Actor: "system:scheduler", At: e.at()})
	if err != nil {
		e.t.Fatal(err)
	}
	workerEvents, err := worker.Decide(ws, worker.AssignRun{RunID: id, Actor: "system:scheduler", At: e.at()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamRun, ID: id}, Expected: rv, Events: toAny(runEvents)},
		eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamWorker, ID: workerID}, Expected: wv, Events: toAny(workerEvents)})
}

// queuedRun triggers run id on stackID. A PROPOSED run is READY at once;
// a TRACKED run joins the stack's queue and is READY if it got the lock.
func (e *env) queuedRun(id, stackID string, typ run.Type) {
	e.t.Helper()
	var rs run.State
	runEvents := decide(e.t, &rs, run.Trigger{RunID: id, StackID: stackID, Type: typ, Commit: commit, Autodeploy: typ == run.Tracked && !e.manual, Actor: actor, At: e.at()})
	batches := []eventstore.Batch{}
	if typ == run.Proposed {
		runEvents = append(runEvents, decide(e.t, &rs, run.MarkReady{Actor: actor, At: e.at()})...)
	} else {
		ss, sv := loadStack(e.t, e.store, stackID)
		var stackEvents []any
		for _, c := range []stack.Command{
			stack.EnqueueRun{RunID: id, RunType: typ, Actor: actor, At: e.at()},
			stack.AcquireLock{RunID: id, Actor: actor, At: e.at()},
		} {
			events, err := stack.Decide(ss, c)
			if err != nil {
				break // another run holds the lock: this one waits QUEUED
			}
			for _, ev := range events {
				ss.Apply(ev)
				stackEvents = append(stackEvents, ev)
			}
		}
		if ss.LockHolder() == id {
			runEvents = append(runEvents, decide(e.t, &rs, run.MarkReady{Actor: actor, At: e.at()})...)
		}
		batches = append(batches, eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamStack, ID: stackID}, Expected: sv, Events: stackEvents})
	}
	batches = append(batches, eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamRun, ID: id}, Events: runEvents})
	e.append(batches...)
}

func decide(t *testing.T, s *run.State, c run.Command) []any {
	t.Helper()
	events, err := run.Decide(*s, c)
	if err != nil {
		t.Fatalf("%T: %v", c, err)
	}
	for _, ev := range events {
		s.Apply(ev)
	}
	return toAny(events)
}

// stream decodes every event of a stream.
func stream(t *testing.T, store *eventstore.Store, id string) []any {
	t.Helper()
	stored, err := store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]any, len(stored))
	for i, ev := range stored {
		out[i], err = store.Registry().Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func loadRun(t *testing.T, store *eventstore.Store, id string) (run.State, int64) {
	t.Helper()
	var s run.State
	events := stream(t, store, id)
	for _, ev := range events {
		s.Apply(ev.(run.Event))
	}
	return s, int64(len(events))
}

func loadWorker(t *testing.T, store *eventstore.Store, id string) (worker.State, int64) {
	t.Helper()
	var s worker.State
	events := stream(t, store, id)
	for _, ev := range events {
		s.Apply(ev.(worker.Event))
	}
	return s, int64(len(events))
}

func loadStack(t *testing.T, store *eventstore.Store, id string) (stack.State, int64) {
	t.Helper()
	var s stack.State
	events := stream(t, store, id)
	for _, ev := range events {
		s.Apply(ev.(stack.Event))
	}
	return s, int64(len(events))
}
