package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// Why AssignRun may refuse; each refusal is a *RefusedError matching one.
var (
	// ErrRunNotWaiting: the run does not wait for a worker (any more): it
	// is not READY or CONFIRMED, it has a worker, or it does not exist.
	ErrRunNotWaiting = errors.New("the run does not wait for a worker")
	// ErrRunMoved: the run's stack is not in the pool (any more): it moved
	// to another pool or went away since the candidate was found.
	ErrRunMoved = errors.New("the run's stack is not in the pool")
	// ErrWorkerNotIdle: the worker is not an idle worker of the pool.
	ErrWorkerNotIdle = errors.New("the worker is not an idle worker of the pool")
)

// Assigned is what AssignRun recorded: the run as its worker is told of it.
type Assigned struct {
	RunID    string
	StackID  string
	PoolID   string
	WorkerID string
	Type     run.Type
	// Status is READY (start from the beginning) or CONFIRMED (apply the
	// saved plan).
	Status run.Status
	Commit string
	// RunVersion is the run stream's version after RunAssigned.
	RunVersion int64
	At         time.Time
	// WaitingSince is when the run began to wait for a worker: when it
	// became READY or CONFIRMED. At minus WaitingSince is the run's pick-up
	// latency.
	WaitingSince time.Time
}

// AssignRun gives run runID, which must wait for a worker of pool poolID, to
// workerID, an idle worker of that pool: RunAssigned and WorkerRunAssigned
// in one append, at the versions of the run and the worker it decided on.
// Another writer changing either in between (another scheduler, usually)
// makes it decide again on what changed, so a run never goes to two workers
// and a worker never gets two runs; a run or worker no longer free is then
// refused (ErrRunNotWaiting, ErrRunMoved, ErrWorkerNotIdle). Like a worker's
// report, it does not wait for the read models.
func (s *System) AssignRun(ctx context.Context, c Caller, runID, poolID, workerID string) (Assigned, error) {
	if err := errors.Join(ids.Run.Validate("run_id", runID), ids.WorkerPool.Validate("pool_id", poolID), ids.Worker.Validate("worker_id", workerID)); err != nil {
		return Assigned{}, refused(err)
	}
	var a Assigned
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: c.Actor, CorrelationID: runID})
	out, err := s.executeNoWait(ctx, "assign run", func(ctx context.Context, u *aggregate.Unit) error {
		at := s.now()
		r, err := runOf(ctx, u, runID)
		if err != nil {
			return err
		}
		if rs := r.State(); !rs.Exists() || (rs.Status() != run.Ready && rs.Status() != run.Confirmed) || rs.WorkerID() != "" {
			return refused(fmt.Errorf("run %s (%s, worker %q): %w", runID, rs.Status(), rs.WorkerID(), ErrRunNotWaiting))
		}
		var waitingSince time.Time
		if h := r.State().History(); len(h) > 0 {
			waitingSince = h[len(h)-1].At
		}
		stk, err := stackOf(ctx, u, r.State().StackID())
		if err != nil {
			return err
		}
		if !stk.State().Exists() || stk.State().Settings().WorkerPoolID != poolID {
			return refused(fmt.Errorf("run %s, stack %s: %w", runID, r.State().StackID(), ErrRunMoved))
		}
		w, err := workerOf(ctx, u, workerID)
		if err != nil {
			return err
		}
		if w.State().Status() != worker.Idle || w.State().PoolID() != poolID {
			return refused(fmt.Errorf("worker %s (%s, pool %q): %w", workerID, w.State().Status(), w.State().PoolID(), ErrWorkerNotIdle))
		}
		if _, err := r.Do(run.Assign{WorkerID: workerID, PoolID: poolID, Actor: c.Actor, At: at}); err != nil {
			return refused(fmt.Errorf("run %s refused worker %s: %w", runID, workerID, err))
		}
		if _, err := w.Do(worker.AssignRun{RunID: runID, Actor: c.Actor, At: at}); err != nil {
			return refused(fmt.Errorf("worker %s refused run %s: %w", workerID, runID, err))
		}
		if err := startDriftRun(ctx, u, r, poolID, c.Actor, at); err != nil {
			return err
		}
		rs := r.State()
		a = Assigned{RunID: runID, StackID: rs.StackID(), PoolID: poolID, WorkerID: workerID, Type: rs.Type(),
			Status: rs.Status(), Commit: rs.Commit(), At: at, WaitingSince: waitingSince}
		return nil
	})
	if err != nil {
		return Assigned{}, err
	}
	for _, events := range out {
		if n := len(events); n > 0 && events[0].StreamID == runID {
			a.RunVersion = events[n-1].Version
		}
	}
	return a, nil // the scheduler logs the assignment, with how long the run waited
}
