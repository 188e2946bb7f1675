package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// runCandidate is a run that looked assignable when the pass began.
type runCandidate struct {
	id       string
	pool     string
	class    int // scheduling class: lower goes first
	queuedAt time.Time
}

// workerCandidate is a worker that looked idle when the pass began.
type workerCandidate struct {
	id   string
	pool string
}

// class is a run's scheduling class: tracked runs and tasks (including
// confirmed runs waiting to apply) first, then proposed runs, then drift
// detection. The read model's ORDER BY in waitingRunsSQL says the same.
func class(typ run.Type, drift bool) int {
	switch {
	case typ != run.Proposed:
		return 0
	case !drift:
		return 1
	default:
		return 2
	}
}

// byPriority orders runs by class, then queue time, then id.
func byPriority(a, b runCandidate) int {
	return cmp.Or(cmp.Compare(a.class, b.class), a.queuedAt.Compare(b.queuedAt), cmp.Compare(a.id, b.id))
}

// assignable reports whether r waits for a worker.
func assignable(r run.State) bool {
	return (r.Status() == run.Ready || r.Status() == run.Confirmed) && r.WorkerID() == ""
}

const idleWorkersSQL = `SELECT id, pool_id FROM rm_workers WHERE gone = '' AND NOT drained AND run_id = ''`

// idleWorkers returns the workers that look idle, by pool: the read
// model's, plus hinted workers whose aggregate says they are idle.
func (s *Scheduler) idleWorkers(ctx context.Context, hinted []string) (map[string][]workerCandidate, error) {
	rows, err := s.cfg.Pool.Query(ctx, idleWorkersSQL)
	if err != nil {
		return nil, fmt.Errorf("idle workers: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (workerCandidate, error) {
		var w workerCandidate
		return w, r.Scan(&w.id, &w.pool)
	})
	if err != nil {
		return nil, fmt.Errorf("idle workers: %w", err)
	}
	seen := make(map[string]bool, len(found))
	for _, w := range found {
		seen[w.id] = true
	}
	for _, id := range hinted {
		if seen[id] {
			continue
		}
		ws, err := aggregate.Load(ctx, s.cfg.Aggregates, aggregate.Worker, id)
		if err != nil {
			return nil, err
		}
		if ws.Status() != worker.Idle {
			s.hints.forgetWorker(id)
			continue
		}
		found = append(found, workerCandidate{id: id, pool: ws.PoolID()})
	}
	byPool := map[string][]workerCandidate{}
	for _, w := range found {
		byPool[w.pool] = append(byPool[w.pool], w)
	}
	return byPool, nil
}

// waitingRunsSQL lists the first runs waiting for a worker in each of the
// pools $1, at most $2 per pool, in scheduling order.
const waitingRunsSQL = `SELECT id, pool_id, type, drift, created_at FROM (
	SELECT id, pool_id, type, drift, created_at, row_number() OVER (PARTITION BY pool_id
		ORDER BY CASE WHEN type <> 'PROPOSED' THEN 0 WHEN NOT drift THEN 1 ELSE 2 END, created_at, id) AS n
	FROM rm_runs WHERE status IN ('READY', 'CONFIRMED') AND worker_id = '' AND pool_id = ANY($1)) r
	WHERE n <= $2`

// waitingRuns returns the runs waiting for a worker in pools, by pool in
// scheduling order: the read model's, plus hinted runs whose aggregate says
// they wait (their pool is their stack's). full reports the pools whose
// list was cut at CandidatesPerPool.
func (s *Scheduler) waitingRuns(ctx context.Context, pools []string, hinted []string) (byPool map[string][]runCandidate, full map[string]bool, err error) {
	rows, err := s.cfg.Pool.Query(ctx, waitingRunsSQL, pools, s.cfg.CandidatesPerPool)
	if err != nil {
		return nil, nil, fmt.Errorf("waiting runs: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (runCandidate, error) {
		var (
			c     runCandidate
			typ   string
			drift bool
		)
		err := r.Scan(&c.id, &c.pool, &typ, &drift, &c.queuedAt)
		c.class = class(run.Type(typ), drift)
		return c, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("waiting runs: %w", err)
	}
	byPool, full = map[string][]runCandidate{}, map[string]bool{}
	seen := make(map[string]bool, len(found))
	for _, c := range found {
		seen[c.id] = true
		byPool[c.pool] = append(byPool[c.pool], c)
	}
	for pool, cs := range byPool {
		full[pool] = len(cs) >= s.cfg.CandidatesPerPool
	}
	for _, id := range hinted {
		if seen[id] {
			continue
		}
		r, err := aggregate.Load(ctx, s.cfg.Aggregates, aggregate.Run, id)
		if err != nil {
			return nil, nil, err
		}
		if !assignable(r) {
			s.hints.forgetRun(id)
			continue
		}
		st, err := aggregate.Load(ctx, s.cfg.Aggregates, aggregate.Stack, r.StackID())
		if err != nil {
			return nil, nil, err
		}
		if !st.Exists() {
			s.hints.forgetRun(id)
			continue
		}
		pool := st.Settings().WorkerPoolID
		if !slices.Contains(pools, pool) {
			continue // no idle worker there yet; the hint stays
		}
		byPool[pool] = append(byPool[pool], runCandidate{id: id, pool: pool, class: class(r.Type(), r.DriftDetection()), queuedAt: r.TriggeredAt()})
	}
	for _, cs := range byPool {
		slices.SortFunc(cs, byPriority)
	}
	return byPool, full, nil
}
