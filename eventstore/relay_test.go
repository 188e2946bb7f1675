package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/pgserver"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// startRelay runs a relay until the returned stop function is called.
func startRelay(t testing.TB, pool *pgxpool.Pool, n *testenv.NATSServer) (*eventstore.Relay, func()) {
	t.Helper()
	nc, err := n.Bus().Connect("relay-test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := eventstore.NewRelay(pool, nc, eventstore.RelayConfig{StandbyInterval: 100 * time.Millisecond, PollInterval: 200 * time.Millisecond, BatchSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			nc.Close()
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// collector consumes the EVENTS stream with a durable consumer.
type collector struct {
	mu     sync.Mutex
	seen   map[string]bool
	unique []eventstore.Event
	dups   int
	bad    error
}

func (c *collector) add(e eventstore.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[e.ID] {
		c.dups++
		return
	}
	c.seen[e.ID] = true
	c.unique = append(c.unique, e)
}

func (c *collector) snapshot() ([]eventstore.Event, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.Event(nil), c.unique...), c.dups, c.bad
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.unique)
}

func consume(t testing.TB, n *testenv.NATSServer, durable string) *collector {
	t.Helper()
	nc := n.Connect(t, "consumer-test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{seen: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cons jetstream.Consumer
	await.Until(t, 30*time.Second, "the EVENTS stream", func() bool {
		cons, err = js.CreateOrUpdateConsumer(ctx, eventstore.EventsStream, jetstream.ConsumerConfig{
			Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err == nil
	})
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		e, err := eventstore.DecodeMessage(msg.Data())
		if err == nil && msg.Subject() != eventstore.Subject(e) {
			err = fmt.Errorf("event %d on subject %s", e.Position, msg.Subject())
		}
		if err == nil && msg.Headers().Get(jetstream.MsgIDHeader) != e.ID {
			err = fmt.Errorf("event %d has Nats-Msg-Id %q", e.Position, msg.Headers().Get(jetstream.MsgIDHeader))
		}
		if err != nil {
			c.mu.Lock()
			c.bad = errors.Join(c.bad, err)
			c.mu.Unlock()
		} else {
			c.add(e)
		}
		_ = msg.Ack()
	}, jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// liveReader follows the store with ReadAll, as an audit client would.
type liveReader struct {
	collector
	cursor   eventstore.Cursor
	orderErr error
}

func follow(ctx context.Context, s *eventstore.Store, w *eventstore.Watcher) *liveReader {
	lr := &liveReader{collector: collector{seen: map[string]bool{}}}
	go func() {
		for ctx.Err() == nil {
			changed := w.Changed()
			evs, err := s.ReadAll(ctx, lr.cursor, eventstore.Filter{}, 500)
			if err != nil {
				continue
			}
			for _, e := range evs {
				if !lr.cursor.Before(e.Cursor()) {
					lr.mu.Lock()
					lr.bad = errors.Join(lr.bad, fmt.Errorf("cursor went back from %v to %v", lr.cursor, e.Cursor()))
					lr.mu.Unlock()
				}
				lr.cursor = e.Cursor()
				lr.add(e)
			}
			if len(evs) == 0 {
				select {
				case <-ctx.Done():
				case <-changed:
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	return lr
}

// checkCommitOrder asserts each event once, per-stream versions contiguous
// from 1, and the same sequence as the table read in commit order.
func checkCommitOrder(t *testing.T, who string, got []eventstore.Event, want []eventstore.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s saw %d events, the table has %d", who, len(got), len(want))
	}
	next := map[string]int64{}
	for i, e := range got {
		if e.ID != want[i].ID {
			t.Fatalf("%s: event %d is %s (position %d), commit order has %s (position %d)", who, i, e.ID, e.Position, want[i].ID, want[i].Position)
		}
		if e.Version != next[e.StreamID]+1 {
			t.Fatalf("%s: stream %s version %d follows %d", who, e.StreamID, e.Version, next[e.StreamID])
		}
		next[e.StreamID] = e.Version
	}
}

func readEverything(t *testing.T, s *eventstore.Store) []eventstore.Event {
	t.Helper()
	var all []eventstore.Event
	var c eventstore.Cursor
	for {
		evs, err := s.ReadAll(context.Background(), c, eventstore.Filter{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		c = evs[len(evs)-1].Cursor()
	}
}

// appendWithRetry appends to a stream at the version it reads, reloading and
// retrying on conflict, as a command handler does.
func appendWithRetry(ctx context.Context, s *eventstore.Store, stream eventstore.Stream, conflicts *atomic.Int64, events ...any) error {
	for {
		v, err := s.Version(ctx, stream.ID)
		if err != nil {
			return err
		}
		_, err = s.Append(ctx, stream, v, events...)
		if errors.Is(err, eventstore.ErrConflict) {
			conflicts.Add(1)
			continue
		}
		return err
	}
}

func TestConcurrentWritersLiveReaderAndConsumer(t *testing.T) {
	s, pool := newStore(t)
	n := testenv.NATS(t)
	_, stopRelay := startRelay(t, pool, n)
	defer stopRelay()
	consumer := consume(t, n, "concurrency")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := eventstore.NewWatcher(pool, nil)
	go w.Run(ctx)
	reader := follow(ctx, s, w)

	const writers, streams, appendsPerWriter = 8, 200, 150
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			<-start
			// Everyone first races for the same stream: conflicts are certain.
			if err := appendWithRetry(ctx, s, eventstore.Stream{Type: "thing", ID: "s_0"}, &conflicts, thingRenamed{Name: "race", N: i}); err != nil {
				errs <- err
				return
			}
			for j := range appendsPerWriter {
				id := rng.IntN(streams)
				if rng.IntN(2) == 0 {
					id = rng.IntN(5) // hot streams
				}
				evs := make([]any, 1+rng.IntN(3))
				for k := range evs {
					evs[k] = thingRenamed{Name: fmt.Sprintf("w%d", i), N: j}
				}
				if err := appendWithRetry(ctx, s, eventstore.Stream{Type: "thing", ID: fmt.Sprintf("s_%d", id)}, &conflicts, evs...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := countEvents(t, pool)
	t.Logf("%d events in %d streams, %d conflicts retried", total, streams, conflicts.Load())
	if conflicts.Load() < writers-1 {
		t.Fatalf("only %d conflicts: the test did not contend", conflicts.Load())
	}
	await.Until(t, 60*time.Second, "the reader and the consumer to see every event", func() bool {
		return reader.count() >= total && consumer.count() >= total
	})
	want := readEverything(t, s)
	if len(want) != total {
		t.Fatalf("read all returned %d events, table has %d", len(want), total)
	}
	got, dups, bad := reader.snapshot()
	if bad != nil || dups != 0 {
		t.Fatalf("reader: %d duplicates, %v", dups, bad)
	}
	checkCommitOrder(t, "live reader", got, want)
	got, dups, bad = consumer.snapshot()
	if bad != nil || dups != 0 {
		t.Fatalf("consumer: %d duplicates, %v", dups, bad)
	}
	checkCommitOrder(t, "JetStream consumer", got, want)
}

// writeSteadily appends count events over a few streams, one per append,
// retrying transient failures (used while parts restart).
func writeSteadily(ctx context.Context, s *eventstore.Store, count int, written *atomic.Int64) error {
	for i := range count {
		stream := eventstore.Stream{Type: "thing", ID: fmt.Sprintf("steady_%d", i%7)}
		for {
			_, err := s.Append(ctx, stream, eventstore.Any, thingRenamed{Name: "steady", N: i})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond) // the database is restarting
		}
		written.Add(1)
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond) // spread the writes over the restarts
		}
	}
	return nil
}

func TestRelaySurvivesRelayKillAndNATSRestart(t *testing.T) {
	s, pool := newStore(t)
	n := testenv.NATS(t)
	_, stop1 := startRelay(t, pool, n)
	consumer := consume(t, n, "restarts")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const total = 3000
	var written atomic.Int64
	done := make(chan error, 1)
	go func() { done <- writeSteadily(ctx, s, total, &written) }()

	await.Until(t, 60*time.Second, "the first relay to publish", func() bool { return consumer.count() >= 300 })
	stop1() // killed mid-stream
	if written.Load() >= total {
		t.Fatal("the writer finished before the relay was killed: nothing tests the hand-over")
	}
	startRelay(t, pool, n)
	await.Until(t, 60*time.Second, "the second relay to publish", func() bool { return consumer.count() >= 1200 })
	n.Restart(t)
	if written.Load() >= total {
		t.Fatal("the writer finished before NATS restarted")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	await.Until(t, 60*time.Second, "every event after the restarts", func() bool { return consumer.count() >= total })
	got, dups, bad := consumer.snapshot()
	if bad != nil {
		t.Fatal(bad)
	}
	t.Logf("consumer dropped %d duplicates", dups)
	checkCommitOrder(t, "consumer", got, readEverything(t, s))
}

func TestOnlyOneRelayIsActive(t *testing.T) {
	_, pool := newStore(t)
	n := testenv.NATS(t)
	r0, stop0 := startRelay(t, pool, n)
	r1, stop1 := startRelay(t, pool, n)
	relays := []*eventstore.Relay{r0, r1}
	stops := []func(){stop0, stop1}
	await.Until(t, 10*time.Second, "one relay to become active", func() bool { return r0.Active() || r1.Active() })
	// Both get several chances to try for the lock; still only one may hold it.
	for range 5 {
		if r0.Active() && r1.Active() {
			t.Fatal("two relays active at once")
		}
		time.Sleep(50 * time.Millisecond)
	}
	active := 0
	if r1.Active() {
		active = 1
	}
	stops[active]()
	await.Until(t, 10*time.Second, "the standby relay to take over", relays[1-active].Active)
}

func TestRelaySurvivesPostgresRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := pgserver.Config{DataDir: testenv.ClusterDir(t)}
	srv, err := pgserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	if err := srv.CreateDatabase(ctx, "restart"); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, srv.URL("restart"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(pool, testRegistry(t))
	t.Cleanup(s.Close)
	n := testenv.NATS(t)
	startRelay(t, pool, n)
	consumer := consume(t, n, "pg-restart")

	const total = 1500
	var written atomic.Int64
	done := make(chan error, 1)
	go func() { done <- writeSteadily(ctx, s, total, &written) }()
	await.Until(t, 60*time.Second, "events before the restart", func() bool { return consumer.count() >= 200 })
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Port = srv.Port()
	srv, err = pgserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	if written.Load() >= total {
		t.Fatal("the writer finished before PostgreSQL restarted")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	await.Until(t, 60*time.Second, "every event after the restart", func() bool { return consumer.count() >= total })
	got, _, bad := consumer.snapshot()
	if bad != nil {
		t.Fatal(bad)
	}
	checkCommitOrder(t, "consumer", got, readEverything(t, s))
}
