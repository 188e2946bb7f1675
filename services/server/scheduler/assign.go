package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// pass makes one round of assignments. again reports that work may be
// left that this pass did not look at (a pool's candidate list was cut).
func (s *Scheduler) pass(ctx context.Context) (again bool, err error) {
	s.passes.Add(1)
	hintedRuns, hintedWorkers := s.hints.snapshot(s.cfg.Now())
	workers, err := s.idleWorkers(ctx, hintedWorkers)
	if err != nil || len(workers) == 0 {
		return false, err
	}
	pools := make([]string, 0, len(workers))
	for pool := range workers {
		pools = append(pools, pool)
	}
	runs, full, err := s.waitingRuns(ctx, pools, hintedRuns)
	if err != nil {
		return false, err
	}
	for _, pool := range pools {
		ws := workers[pool]
		// Replicas see the same runs in the same order; shuffled workers
		// make them less likely to reach for the same worker as well.
		rand.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
		for _, c := range runs[pool] {
			if len(ws) == 0 {
				break
			}
			if ws, err = s.assignRun(ctx, c, ws); err != nil {
				return false, err
			}
		}
		again = again || (len(ws) > 0 && full[pool])
	}
	return again, nil
}

// assignRun gives the run c to one of the workers ws, and returns the
// workers still idle. Each attempt decides on the run and the worker freshly
// loaded from the store and appends both events at the versions it loaded.
// A conflict means another writer (usually another scheduler) got there
// first: the next attempt reloads both and so sees what changed, and a run
// or worker that is no longer free is dropped rather than retried.
func (s *Scheduler) assignRun(ctx context.Context, c runCandidate, ws []workerCandidate) ([]workerCandidate, error) {
	log := s.log.With("run_id", c.id, "pool_id", c.pool)
	for attempt := 0; len(ws) > 0 && attempt < 2*len(ws)+4; attempt++ {
		r, runVersion, err := s.loader.run(ctx, c.id)
		if err != nil {
			return ws, err
		}
		if !assignable(r) {
			s.hints.forgetRun(c.id)
			return ws, nil
		}
		st, err := s.loader.stack(ctx, r.StackID())
		if err != nil {
			return ws, err
		}
		if !st.Exists() || st.Settings().WorkerPoolID != c.pool {
			// The stack moved to another pool (or went away) since the read
			// model was written; a later pass sees the run under its pool.
			return ws, nil
		}
		w := ws[0]
		wlog := log.With("worker_id", w.id)
		wst, workerVersion, err := s.loader.worker(ctx, w.id)
		if err != nil {
			return ws, err
		}
		if wst.Status() != worker.Idle || wst.PoolID() != c.pool {
			s.hints.forgetWorker(w.id)
			ws = ws[1:]
			continue
		}
		at := s.now()
		runEvents, err := run.Decide(r, run.Assign{WorkerID: w.id, PoolID: c.pool, Actor: s.cfg.Actor, At: at})
		if err != nil || len(runEvents) == 0 {
			wlog.WarnContext(ctx, "run refused the assignment", "err", err)
			return ws, nil
		}
		workerEvents, err := worker.Decide(wst, worker.AssignRun{RunID: c.id, Actor: s.cfg.Actor, At: at})
		if err != nil || len(workerEvents) == 0 {
			wlog.WarnContext(ctx, "worker refused the run", "err", err)
			ws = ws[1:]
			continue
		}
		actx := eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: s.cfg.Actor, CorrelationID: c.id})
		out, err := s.cfg.Store.AppendAll(actx,
			eventstore.Batch{Stream: runStream(c.id), Expected: runVersion, Events: toAny(runEvents)},
			eventstore.Batch{Stream: workerStream(w.id), Expected: workerVersion, Events: toAny(workerEvents)})
		var conflict *eventstore.ConflictError
		if errors.As(err, &conflict) {
			wlog.DebugContext(ctx, "assignment lost to a concurrent change", "stream", conflict.Stream.String())
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("assign run %s to worker %s: %w", c.id, w.id, err)
		}
		s.assigned.Add(1)
		s.hints.forgetRun(c.id)
		s.hints.forgetWorker(w.id)
		a := protocol.Assignment{RunID: c.id, StackID: r.StackID(), PoolID: c.pool, WorkerID: w.id, Type: r.Type(),
			Status: r.Status(), Commit: r.Commit(), RunVersion: out[0][len(out[0])-1].Version, AssignedAt: at}
		s.notify(ctx, a)
		wlog.InfoContext(ctx, "run assigned", "run_type", string(r.Type()), "status", string(r.Status()),
			"waited", at.Sub(c.queuedAt).String())
		return slices.Delete(ws, 0, 1), nil
	}
	return ws, nil
}

// notify tells the worker of its new run. A lost message does not undo the
// assignment, which is recorded; the worker can read it from the API.
func (s *Scheduler) notify(ctx context.Context, a protocol.Assignment) {
	body, err := json.Marshal(a)
	if err == nil {
		err = s.cfg.NATS.Publish(protocol.WorkerSubject(a.PoolID, a.WorkerID, protocol.KindAssign), body)
	}
	if err != nil {
		s.log.WarnContext(ctx, "could not send the assignment to the worker",
			"run_id", a.RunID, "pool_id", a.PoolID, "worker_id", a.WorkerID, "err", err)
	}
}

func toAny[E any](events []E) []any {
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = e
	}
	return out
}
