package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/testenv"
)

// BenchmarkRebuild measures how fast Rebuild replays a realistic history
// into every projection, on a durable PostgreSQL of its own (the throwaway
// test cluster runs without fsync, which would flatter it). The history is
// recorded with the domain's Decide functions: stacks with a worker each,
// whose runs go through every lifecycle (planned, confirmed and applied,
// autodeployed, proposed, drift detection, tasks, failed, stopped,
// discarded, canceled), with the stack lock queue, worker assignments, and
// now and then settings, environment, lock and drain changes. It is written
// to the events table with COPY, in commit order.
//
//	go test ./projections -run '^$' -bench Rebuild -benchtime=2x
//
// GANTRY_BENCH_EVENTS sets the size of the history (default 500000).
func BenchmarkRebuild(b *testing.B) {
	want := 500_000
	if v, err := strconv.Atoi(os.Getenv("GANTRY_BENCH_EVENTS")); err == nil && v > 0 {
		want = v
	}
	ctx := context.Background()
	pool := benchPool(b)
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		b.Fatal(err)
	}
	store := eventstore.New(pool, reg)
	b.Cleanup(store.Close)
	events, runs := insertHistory(b, pool, reg, want)

	for b.Loop() {
		if err := projections.Rebuild(ctx, pool, store, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events), "events")

	var got int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM rm_runs WHERE status IN ('FINISHED', 'FAILED', 'STOPPED', 'DISCARDED', 'CANCELED')").Scan(&got); err != nil {
		b.Fatal(err)
	}
	if got != runs {
		b.Fatalf("rebuilt %d ended runs, the history has %d runs", got, runs)
	}
}

func benchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	ctx := context.Background()
	srv := testenv.DurablePostgres(b)
	cfg, err := pgxpool.ParseConfig(srv.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	return pool
}

// insertHistory records at least n events and copies them into the events
// table, 50000 per transaction. It returns the number of events and runs.
func insertHistory(b *testing.B, pool *pgxpool.Pool, reg *eventstore.Registry, n int) (events, runs int) {
	b.Helper()
	const stacks = 250
	s := newSim("bn")
	var lanes []*lane
	setup := record(b, s, func() {
		for i := range 4 {
			s.createPool(fmt.Sprintf("wp_bench%d", i), fmt.Sprintf("bench-%d", i))
		}
		for i := range stacks {
			lanes = append(lanes, s.newLane(fmt.Sprintf("stack-%d", i), fmt.Sprintf("wp_bench%d", i%4)))
		}
	})
	steps := setup
	for k := 0; s.events < n; k++ {
		// Round robin: the stacks' runs interleave in the log, as they do live.
		steps = append(steps, record(b, s, func() {
			for i, l := range lanes {
				l.scenario(k + i)
				runs++
			}
		})...)
	}
	var rows [][]any
	flush := func() {
		err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(context.Background(), pgx.Identifier{"events"},
				[]string{"event_id", "stream_id", "stream_type", "version", "event_type", "schema_version", "payload", "metadata", "recorded_at"},
				pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for _, step := range steps {
		for _, batch := range step {
			for i, e := range batch.Events {
				name, version, err := reg.TypeOf(e)
				if err != nil {
					b.Fatal(err)
				}
				payload, err := json.Marshal(e)
				if err != nil {
					b.Fatal(err)
				}
				id, err := uuid.NewV7()
				if err != nil {
					b.Fatal(err)
				}
				rows = append(rows, []any{id, batch.Stream.ID, batch.Stream.Type, batch.Expected + int64(i) + 1, name, int32(version),
					json.RawMessage(payload), json.RawMessage(`{"actor":"bench"}`), simEpoch})
				events++
			}
		}
		if len(rows) >= 50_000 {
			flush()
		}
	}
	if len(rows) > 0 {
		flush()
	}
	return events, runs
}
