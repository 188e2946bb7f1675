package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// RetryRun queues a new run that retries a TRACKED run that FAILED or was
// STOPPED: the same stack, commit and destroy flag, with the stack's
// autodeploy setting as it is now, linked to the old run by retry_of (see
// run.RetryTrigger). Like TriggerRun, the new run takes the stack lock in
// the same append. It returns the new run's id.
func (s *Service) RetryRun(ctx context.Context, c Caller, oldID string) (string, error) {
	if err := ids.Run.Validate("run", oldID); err != nil {
		return "", err
	}
	runID, err := newID(ids.Run)
	if err != nil {
		return "", err
	}
	at := s.now()
	var stackID string
	_, err = s.execute(ctx, "retry run", func(ctx context.Context, u *aggregate.Unit) error {
		old, err := runOf(ctx, u, oldID)
		if err != nil {
			return err
		}
		if !old.State().Exists() {
			return fmt.Errorf("run %s: %w", oldID, domain.ErrNotFound)
		}
		stackID = old.State().StackID()
		stk, err := stackOf(ctx, u, stackID)
		if err != nil {
			return err
		}
		if !stk.State().Exists() {
			return fmt.Errorf("retry run %s: its stack %s: %w", oldID, stackID, domain.ErrNotFound)
		}
		t, err := run.RetryTrigger(old.State(), run.Retry{
			RunID: runID, Autodeploy: stk.State().Settings().Autodeploy, Actor: c.Actor, At: at,
		})
		if err != nil {
			return err
		}
		r, err := runOf(ctx, u, runID)
		if err != nil {
			return err
		}
		return queueTrigger(ctx, u, stk, r, t)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "run retried", "run_id", runID, "retry_of", oldID, "stack_id", stackID, "actor", c.Actor)
	return runID, nil
}

// errNoWorkspaces refuses a replan on a server that cannot delete saved
// workspaces.
var errNoWorkspaces = errors.New("replan run: this server cannot delete saved workspaces (no workspace store configured)")

// ReplanRun throws away the plan of an UNCONFIRMED run so that it plans
// again, in three steps: the run becomes REPLAN_REQUESTED (it keeps its
// stack lock, and neither a confirmation nor a worker can take it), its
// saved workspace is deleted, and it becomes READY for any worker of its
// stack's pool. Nothing can read or write the workspace in between, so the
// new plan's workspace is never the one deleted. A call that failed after
// the first step leaves the run REPLAN_REQUESTED; calling again finishes
// the job.
func (s *Service) ReplanRun(ctx context.Context, c Caller, runID string) error {
	if s.cfg.Workspaces == nil {
		return errNoWorkspaces
	}
	if err := s.runCommand(ctx, c, "replan run", runID, func(_ context.Context, _ *aggregate.Unit, r *runAggregate) error {
		_, err := r.Do(run.Replan{Actor: c.Actor, At: s.now()})
		return err
	}); err != nil {
		return err
	}
	if err := s.cfg.Workspaces.Delete(ctx, runID); err != nil {
		return fmt.Errorf("replan run %s: the run waits in %s: %w", runID, run.ReplanRequested, err)
	}
	return s.runCommand(ctx, c, "make replanned run ready", runID, func(_ context.Context, _ *aggregate.Unit, r *runAggregate) error {
		if r.State().Status() != run.ReplanRequested {
			return nil // discarded (or failed) meanwhile: nothing to make ready
		}
		_, err := r.Do(run.MarkReady{Actor: c.Actor, At: s.now()})
		return err
	})
}
