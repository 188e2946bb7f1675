package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The read models' figures that the /metrics endpoint shows. Each query
// reads only open runs or live workers through a partial index, so its cost
// is bounded by the work in flight, not by the history.

// StatusCount is how many runs (or workers) of a pool are in one status.
type StatusCount struct {
	PoolID string
	Status string
	Count  int64
}

// QueueStat is a pool's queue: the runs waiting for a worker (READY, or
// CONFIRMED and waiting to apply) and how long the oldest has waited.
type QueueStat struct {
	PoolID string
	Depth  int64
	// OldestSeconds is the time since the oldest waiting run last changed
	// (became READY or CONFIRMED, or was handed back by a lost worker).
	OldestSeconds float64
}

// OpenRunCounts counts the runs that have not ended (UNCONFIRMED included)
// by pool and status.
func (q *Queries) OpenRunCounts(ctx context.Context) ([]StatusCount, error) {
	// The predicate repeats rm_runs_open's, so that the planner uses it.
	return q.statusCounts(ctx, "open runs", `SELECT pool_id, status, count(*) FROM rm_runs
		WHERE status NOT IN ('FINISHED', 'FAILED', 'DISCARDED', 'STOPPED', 'CANCELED', 'SKIPPED')
		GROUP BY pool_id, status ORDER BY pool_id, status`)
}

// LiveWorkerCounts counts the workers that are neither lost nor exited by
// pool and status (IDLE, BUSY, DRAINED).
func (q *Queries) LiveWorkerCounts(ctx context.Context) ([]StatusCount, error) {
	return q.statusCounts(ctx, "live workers", `SELECT pool_id, status, count(*) FROM rm_workers
		WHERE gone = '' GROUP BY pool_id, status ORDER BY pool_id, status`)
}

func (q *Queries) statusCounts(ctx context.Context, what, sql string) ([]StatusCount, error) {
	rows, err := q.pool.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatusCount, error) {
		var c StatusCount
		return c, r.Scan(&c.PoolID, &c.Status, &c.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", what, err)
	}
	return out, nil
}

// QueueStats returns the queue of every pool that has runs waiting for a
// worker, as the scheduler sees them (waitingRunsSQL in the scheduler).
func (q *Queries) QueueStats(ctx context.Context) ([]QueueStat, error) {
	rows, err := q.pool.Query(ctx, `SELECT pool_id, count(*), greatest(extract(epoch FROM now() - min(updated_at)), 0)::float8 FROM rm_runs
		WHERE status IN ('READY', 'CONFIRMED') AND worker_id = ''
			AND status NOT IN ('FINISHED', 'FAILED', 'DISCARDED', 'STOPPED', 'CANCELED', 'SKIPPED')
		GROUP BY pool_id ORDER BY pool_id`)
	if err != nil {
		return nil, fmt.Errorf("pool queues: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QueueStat, error) {
		var s QueueStat
		return s, r.Scan(&s.PoolID, &s.Depth, &s.OldestSeconds)
	})
	if err != nil {
		return nil, fmt.Errorf("pool queues: %w", err)
	}
	return out, nil
}
