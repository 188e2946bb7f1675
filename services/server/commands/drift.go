package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/drift"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// ReconcileActor is who queues the TRACKED run that reconciles drift.
const ReconcileActor = "system:drift"

// startDriftRun takes a slot of the pool's drift run limit for a drift run
// being assigned to one of its workers, in the assignment's unit of work,
// so that two schedulers cannot both take the last slot. A pool without a
// limit keeps no count. At the limit the assignment is refused
// (workerpool.ErrDriftLimit): the run waits.
func startDriftRun(ctx context.Context, u *aggregate.Unit, r *runAggregate, poolID, actor string, at time.Time) error {
	if !r.State().DriftDetection() {
		return nil
	}
	p, err := poolOf(ctx, u, poolID)
	if err != nil {
		return err
	}
	if p.State().DriftRunLimit() == 0 {
		return nil
	}
	if _, err := p.Do(workerpool.StartDriftRun{RunID: r.State().ID(), Actor: actor, At: at}); err != nil {
		return refused(fmt.Errorf("run %s: %w", r.State().ID(), err))
	}
	return nil
}

// endDriftRun gives back the slot a drift run held in the pool of its
// latest assignment, once it ended or left its worker.
func endDriftRun(ctx context.Context, u *aggregate.Unit, r *runAggregate, actor string, at time.Time) error {
	pools := r.State().AssignedPools()
	if !r.State().DriftDetection() || len(pools) == 0 {
		return nil
	}
	p, err := poolOf(ctx, u, pools[len(pools)-1])
	if err != nil {
		return err
	}
	if !p.State().Exists() || len(p.State().DriftRuns()) == 0 {
		return nil
	}
	_, err = p.Do(workerpool.EndDriftRun{RunID: r.State().ID(), Actor: actor, At: at})
	return err
}

// noteDrift records, in the unit of the report that ended a drift run with
// a plan that has changes, DriftDetected on the stack's drift record with
// the changed resources; when the stack's drift schedule reconciles, a
// TRACKED run at the same commit is queued with it. A stack manually
// locked by someone refuses the reconciling run: the drift is recorded
// without one.
func noteDrift(ctx context.Context, u *aggregate.Unit, r *runAggregate, last *PhaseResult, actor string, at time.Time) error {
	rs := r.State()
	if last == nil || last.Phase != run.PhasePlanning || !last.HasChanges || !rs.DriftDetection() || rs.Status() != run.Finished {
		return nil
	}
	sch, err := aggregate.Get(ctx, u, aggregate.Schedule, schedule.DriftID(rs.StackID()))
	if err != nil {
		return err
	}
	var reconcileID string
	if sch.State().Exists() && sch.State().Reconcile() {
		stk, err := stackOf(ctx, u, rs.StackID())
		if err != nil {
			return err
		}
		if l, locked := stk.State().ManualLock(); stk.State().Exists() && (!locked || l.By == ReconcileActor) {
			if reconcileID, err = newID(ids.Run); err != nil {
				return err
			}
			if err := queueRun(ctx, u, queuedRun{runID: reconcileID, stackID: rs.StackID(), typ: run.Tracked, commit: rs.Commit(), actor: ReconcileActor, at: at}); err != nil {
				return fmt.Errorf("reconcile drift of stack %s: %w", rs.StackID(), err)
			}
		}
	}
	d, err := aggregate.Get(ctx, u, aggregate.Drift, rs.StackID())
	if err != nil {
		return err
	}
	_, err = d.Do(drift.Detect{StackID: rs.StackID(), RunID: rs.ID(), Commit: rs.Commit(), Resources: last.ChangedResources,
		ReconcileRunID: reconcileID, Actor: actor, At: at})
	return err
}
