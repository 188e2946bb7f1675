package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// handOn gives a free run lock to the run at the head of the stack's queue
// and makes that run READY, in the same unit of work as whatever freed the
// lock (a run that ended, an unlock, or a trigger on an idle stack). A
// manual lock that admits nobody in the queue leaves the lock free. Entries
// of runs that already ended (which a consistent history never has) are
// dropped from the queue on the way, so one stale entry cannot block the
// stack forever.
func handOn(ctx context.Context, u *aggregate.Unit, stk *stackAggregate, actor string, at time.Time) error {
	for stk.State().LockHolder() == "" {
		queue := stk.State().Queue()
		if len(queue) == 0 {
			return nil
		}
		head, err := runOf(ctx, u, queue[0])
		if err != nil {
			return err
		}
		if !head.State().Exists() || head.State().IsTerminal() {
			if _, err := stk.Do(stack.ReleaseLock{RunID: queue[0], Actor: actor, At: at}); err != nil {
				return fmt.Errorf("drop ended run %s from the queue of stack %s: %w", queue[0], stk.State().ID(), err)
			}
			continue
		}
		_, err = stk.Do(stack.AcquireLock{RunID: queue[0], Actor: actor, At: at})
		if errors.Is(err, stack.ErrLockedByOther) {
			return nil // the head waits for the manual lock's holder to unlock
		}
		if err != nil {
			return fmt.Errorf("hand the lock of stack %s to run %s: %w", stk.State().ID(), queue[0], err)
		}
		if head.State().Status() == run.Queued {
			if _, err := head.Do(run.MarkReady{Actor: actor, At: at}); err != nil {
				return fmt.Errorf("make run %s ready: %w", queue[0], err)
			}
		}
	}
	return nil
}

// releaseStack lets go of what an ended run held on its stack: the run lock
// (handed on to the next run) or its place in the queue. Proposed runs hold
// nothing.
func releaseStack(ctx context.Context, u *aggregate.Unit, r *runAggregate, actor string, at time.Time) error {
	if err := endDriftRun(ctx, u, r, actor, at); err != nil {
		return err
	}
	if r.State().Type() == run.Proposed {
		return nil
	}
	stk, err := stackOf(ctx, u, r.State().StackID())
	if err != nil {
		return err
	}
	if !stk.State().Exists() {
		return nil // nothing to release: a stack in use cannot be deleted
	}
	if _, err := stk.Do(stack.ReleaseLock{RunID: r.State().ID(), Actor: actor, At: at}); err != nil {
		return fmt.Errorf("release stack %s from run %s: %w", stk.State().ID(), r.State().ID(), err)
	}
	return handOn(ctx, u, stk, actor, at)
}
