package eventstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

// The benchmarks compare the store with pgbench inserting equivalent rows
// (same columns, same indexes) on the same durable PostgreSQL in the same
// run. Each runs for a fixed time per side; use -benchtime=1x.
//
//	go test ./eventstore -run '^$' -bench . -benchtime=1x

var benchSeconds = func() int {
	if v, err := strconv.Atoi(os.Getenv("GANTRY_BENCH_SECONDS")); err == nil && v > 0 {
		return v
	}
	return 10
}()

// benchServer starts a durable cluster of its own: the throwaway test
// cluster runs with fsync off, which would flatter both sides.
func benchServer(b *testing.B) (*pgserver.Server, *pgxpool.Pool, string) {
	b.Helper()
	ctx := context.Background()
	srv := testenv.DurablePostgres(b)
	cfg, err := pgxpool.ParseConfig(srv.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 40
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	// The baseline table has the events table's columns, defaults and indexes.
	if _, err := pool.Exec(ctx, "CREATE TABLE baseline_events (LIKE events INCLUDING ALL)"); err != nil {
		b.Fatal(err)
	}
	return srv, pool, srv.URL("bench")
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchTPS runs script with the given clients and returns transactions/s.
func pgbenchTPS(b *testing.B, srv *pgserver.Server, script string, clients int) float64 {
	b.Helper()
	path, err := exec.LookPath("pgbench")
	if err != nil {
		b.Skip("pgbench is not installed (apt-get install postgresql-client): no baseline")
	}
	f := filepath.Join(b.TempDir(), "script.sql")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(path, "-n", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port()), "-U", "postgres",
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 4)), "-T", strconv.Itoa(benchSeconds), "-f", f, "bench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench printed no tps:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps
}

// baselineInsert inserts the rows an append of rows thingCreated events
// writes, to a fresh stream, in one statement.
func baselineInsert(rows int) string {
	return fmt.Sprintf(`INSERT INTO baseline_events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, recorded_at)
SELECT gen_random_uuid(), s.id, 'thing', v, 'ThingCreated', 1, '{"name":"bench"}', '{"actor":"bench"}', now()
FROM (SELECT 'pgb_' || gen_random_uuid() AS id) s, generate_series(1, %d) v;
`, rows)
}

// appendRate appends from writers goroutines for the bench duration, each
// append of perAppend events to a fresh stream, and returns appends/s.
func appendRate(b *testing.B, s *eventstore.Store, writers, perAppend int) float64 {
	b.Helper()
	ctx := eventstore.WithMetadata(context.Background(), eventstore.Metadata{Actor: "bench"})
	deadline := time.Now().Add(time.Duration(benchSeconds) * time.Second)
	var appends atomic.Int64
	var wg sync.WaitGroup
	evs := make([]any, perAppend)
	for i := range evs {
		evs[i] = thingCreated{Name: "bench"}
	}
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				stream := eventstore.Stream{Type: "thing", ID: fmt.Sprintf("b_%d_%d_%d_%d", writers, perAppend, w, i)}
				if _, err := s.Append(ctx, stream, eventstore.NoStream, evs...); err != nil {
					b.Error(err)
					return
				}
				appends.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(appends.Load()) / time.Since(start).Seconds()
}

func BenchmarkAppendVsPgbench(b *testing.B) {
	srv, pool, _ := benchServer(b)
	s := eventstore.New(pool, testRegistry(b))
	b.Cleanup(s.Close)
	for _, tc := range []struct{ writers, events int }{{1, 1}, {16, 1}, {4, 10}} {
		b.Run(fmt.Sprintf("writers=%d/events=%d", tc.writers, tc.events), func(b *testing.B) {
			for b.Loop() {
				ours := appendRate(b, s, tc.writers, tc.events) * float64(tc.events)
				base := pgbenchTPS(b, srv, baselineInsert(tc.events), tc.writers) * float64(tc.events)
				b.ReportMetric(ours, "events/s")
				b.ReportMetric(base, "pgbench_rows/s")
				b.ReportMetric(ours/base, "ratio")
			}
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	_, pool, _ := benchServer(b)
	s := eventstore.New(pool, testRegistry(b))
	b.Cleanup(s.Close)
	const total = 1_000_000
	ctx := context.Background()
	// Rows as Append writes them, filled in bulk: 10,000 streams of 100.
	if _, err := pool.Exec(ctx, `INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, recorded_at)
		SELECT gen_random_uuid(), 'r_' || (g / 100), 'thing', g % 100 + 1, 'ThingRenamed', 1,
		       jsonb_build_object('name', 'bench', 'n', g), '{"actor":"bench","correlation_id":"c"}', now()
		FROM generate_series(0, $1 - 1) g`, total); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE events"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		start := time.Now()
		var c eventstore.Cursor
		n := 0
		for {
			evs, err := s.ReadAll(ctx, c, eventstore.Filter{}, 5000)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			n += len(evs)
			c = evs[len(evs)-1].Cursor()
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	}
}

func BenchmarkCommitToConsumer(b *testing.B) {
	_, pool, _ := benchServer(b)
	s := eventstore.New(pool, testRegistry(b))
	b.Cleanup(s.Close)
	n := testenv.NATS(b)
	startRelay(b, pool, n)
	nc := n.Connect(b, "bench-consumer")
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var cons jetstream.Consumer
	await.Until(b, 30*time.Second, "the EVENTS stream", func() bool {
		cons, err = js.OrderedConsumer(ctx, eventstore.EventsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
		return err == nil
	})
	var mu sync.Mutex
	var latencies []time.Duration
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		e, err := eventstore.DecodeMessage(msg.Data())
		if err != nil {
			b.Error(err)
			return
		}
		mu.Lock()
		latencies = append(latencies, time.Since(e.Time))
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
	for b.Loop() {
		// A steady 1,000 events/s from 4 writers, each on its own tick.
		const rate, writers = 1000, 4
		count := rate * benchSeconds
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				tick := time.NewTicker(time.Second * writers / rate)
				defer tick.Stop()
				for i := range count / writers {
					<-tick.C
					stream := eventstore.Stream{Type: "thing", ID: fmt.Sprintf("l_%d_%d", w, i%50)}
					if _, err := s.Append(ctx, stream, eventstore.Any, thingCreated{Name: "latency"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		await.Until(b, 30*time.Second, "every event delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(latencies) >= count
		})
		mu.Lock()
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max_ms")
		latencies = latencies[:0]
		mu.Unlock()
	}
}
