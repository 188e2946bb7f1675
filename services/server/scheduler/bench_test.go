package scheduler_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// BenchmarkPickUpLatency measures, with 8 idle workers, the time from the
// commit of RunReady (AppendAll returned) to the assignment arriving on the
// worker's subject: relay, wake-up, pass, assignment append and publish.
// Each worker finishes its run right after, so all 8 are idle again.
// Run with -benchtime=300x for a meaningful p99.
func BenchmarkPickUpLatency(b *testing.B) {
	e := newEnv(b)
	const pool = "wp_bench"
	stk := e.createStack(pool)
	type arrival struct {
		runID string
		at    time.Time
	}
	arrivals := make(chan arrival, 16)
	nc := e.connect("launcher")
	workers := make([]string, 8)
	for i := range workers {
		workers[i] = e.id("wkr")
		_, err := nc.Subscribe(protocol.WorkerSubject(pool, workers[i], protocol.KindAssign), func(m *nats.Msg) {
			now := time.Now()
			var a protocol.Assignment
			if err := json.Unmarshal(m.Data, &a); err != nil {
				b.Error(err)
				return
			}
			arrivals <- arrival{a.RunID, now}
			if err := finish(context.Background(), e.store, a.RunID, a.WorkerID); err != nil {
				b.Error(err)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	e.startScheduler("scheduler")
	for _, w := range workers {
		e.registerWorkerID(w, pool)
	}
	await.Until(b, 20*time.Second, "8 idle workers in the read model", func() bool {
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM rm_workers WHERE pool_id = $1 AND run_id = ''`, pool).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n == len(workers)
	})

	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		id := e.id("run")
		var rs run.State
		queued := decideAll(b, &rs, run.Trigger{RunID: id, StackID: stk, Type: run.Proposed, Commit: commit, Actor: actor, At: e.at()})
		e.append(batch(runStreamOf(id), eventstore.NoStream, queued))
		ready := decideAll(b, &rs, run.MarkReady{Actor: actor, At: e.at()})
		b.StartTimer()
		e.append(batch(runStreamOf(id), 1, ready))
		committed := time.Now()
		select {
		case a := <-arrivals:
			if a.runID != id {
				b.Fatalf("assignment of %s, want %s", a.runID, id)
			}
			latencies = append(latencies, a.at.Sub(committed))
		case <-time.After(10 * time.Second):
			b.Fatalf("run %s not assigned within 10s", id)
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
