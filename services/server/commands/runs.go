package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// Trigger is what a run is triggered with.
type Trigger struct {
	Stack       string   // stack id or name
	Type        run.Type // TRACKED, PROPOSED or TASK
	Commit      string   // full SHA; "" means the head of the stack's branch
	TaskCommand string   // TASK only
	Destroy     bool     // TRACKED only: a destroy run
}

// TriggerRun queues a run and returns its id. In one append: RunQueued on
// the new run; for a tracked run or task StackRunEnqueued on the stack and,
// when the run is at the head of the queue and the stack is free,
// StackLockAcquired with the run's RunReady. A proposed run takes no lock
// and is READY at once. A stack manually locked by someone else refuses a
// tracked run or task (*stack.LockedByOtherError naming the holder).
func (s *Service) TriggerRun(ctx context.Context, c Caller, t Trigger) (string, error) {
	stackID, err := s.ResolveStack(ctx, t.Stack)
	if err != nil {
		return "", err
	}
	commit := t.Commit
	if commit == "" {
		if commit, err = s.branchHead(ctx, stackID); err != nil {
			return "", err
		}
	}
	runID, err := newID(ids.Run)
	if err != nil {
		return "", err
	}
	at := s.now()
	_, err = s.execute(ctx, "trigger run", func(ctx context.Context, u *aggregate.Unit) error {
		return queueRun(ctx, u, queuedRun{runID: runID, stackID: stackID, typ: t.Type, commit: commit, taskCommand: t.TaskCommand, destroy: t.Destroy, actor: c.Actor, at: at})
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "run triggered", "run_id", runID, "stack_id", stackID, "type", t.Type, "commit", commit, "actor", c.Actor)
	return runID, nil
}

// queuedRun is a run to queue in a unit of work.
type queuedRun struct {
	runID, stackID string
	typ            run.Type
	commit         string
	taskCommand    string
	drift          bool
	destroy        bool
	deliveryID     string
	actor          string
	at             time.Time
}

// queueRun adds to u the trigger of q, with the stack's autodeploy setting
// as it is now (see queueTrigger).
func queueRun(ctx context.Context, u *aggregate.Unit, q queuedRun) error {
	stk, err := stackOf(ctx, u, q.stackID)
	if err != nil {
		return err
	}
	r, err := runOf(ctx, u, q.runID)
	if err != nil {
		return err
	}
	autodeploy := q.typ == run.Tracked && stk.State().Settings().Autodeploy
	return queueTrigger(ctx, u, stk, r, run.Trigger{
		RunID: q.runID, StackID: q.stackID, Type: q.typ, Commit: q.commit, TaskCommand: q.taskCommand,
		Drift: q.drift, Autodeploy: autodeploy, Destroy: q.destroy, DeliveryID: q.deliveryID, Actor: q.actor, At: q.at,
	})
}

// queueTrigger adds to u the trigger t of run r on stack stk: RunQueued, the
// stack's StackRunEnqueued and, when the run is at the head of the queue and
// the stack is free, StackLockAcquired with the run's RunReady. A proposed
// run takes no lock and is READY at once.
func queueTrigger(ctx context.Context, u *aggregate.Unit, stk *stackAggregate, r *runAggregate, t run.Trigger) error {
	if _, err := r.Do(t); err != nil {
		return err
	}
	if _, err := stk.Do(stack.EnqueueRun{RunID: t.RunID, RunType: t.Type, Actor: t.Actor, At: t.At}); err != nil {
		return err
	}
	if t.Type == run.Proposed {
		_, err := r.Do(run.MarkReady{Actor: t.Actor, At: t.At})
		return err
	}
	return handOn(ctx, u, stk, t.Actor, t.At)
}

// branchHead resolves the head commit of the stack's branch.
func (s *Service) branchHead(ctx context.Context, stackID string) (string, error) {
	stk, err := aggregate.Load(ctx, s.aggs, aggregate.Stack, stackID)
	if err != nil {
		return "", err
	}
	if !stk.Exists() {
		return "", fmt.Errorf("stack %s: %w", stackID, domain.ErrNotFound)
	}
	settings := stk.Settings()
	resolver := s.cfg.Git
	if g, ok := resolver.(GitResolver); ok && settings.VCSIntegrationID != "" {
		a, err := s.VCSAccess(ctx, settings.VCSIntegrationID)
		if err != nil {
			return "", err
		}
		var cleanup func()
		if g, cleanup, err = g.WithCredentials(gitCredentials(a)); err != nil {
			return "", err
		}
		defer cleanup()
		resolver = g
	}
	commit, err := resolver.Head(ctx, settings.RepositoryURL, settings.Branch)
	if err != nil {
		return "", fmt.Errorf("stack %s: resolve the head of branch %s: %w", stackID, settings.Branch, err)
	}
	return commit, nil
}

// ConfirmRun approves the plan of an UNCONFIRMED run.
func (s *Service) ConfirmRun(ctx context.Context, c Caller, runID string) error {
	return s.runCommand(ctx, c, "confirm run", runID, func(ctx context.Context, u *aggregate.Unit, r *runAggregate) error {
		_, err := r.Do(run.Confirm{Actor: c.Actor, At: s.now()})
		return err
	})
}

// StopRun asks a running run to stop; its worker ends it.
func (s *Service) StopRun(ctx context.Context, c Caller, runID, note string) error {
	return s.runCommand(ctx, c, "stop run", runID, func(ctx context.Context, u *aggregate.Unit, r *runAggregate) error {
		_, err := r.Do(run.Stop{Note: note, Actor: c.Actor, At: s.now()})
		return err
	})
}

// CancelRun withdraws a run no worker took yet. The run lets go of the
// stack: its lock goes to the next run in the queue, in the same append.
func (s *Service) CancelRun(ctx context.Context, c Caller, runID, note string) error {
	return s.runCommand(ctx, c, "cancel run", runID, func(ctx context.Context, u *aggregate.Unit, r *runAggregate) error {
		at := s.now()
		if _, err := r.Do(run.Cancel{Note: note, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return releaseStack(ctx, u, r, c.Actor, at)
	})
}

// DiscardRun rejects a run before a worker took it, or its plan. Like
// CancelRun, it hands the stack lock on.
func (s *Service) DiscardRun(ctx context.Context, c Caller, runID, note string) error {
	return s.runCommand(ctx, c, "discard run", runID, func(ctx context.Context, u *aggregate.Unit, r *runAggregate) error {
		at := s.now()
		if _, err := r.Do(run.Discard{Note: note, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return releaseStack(ctx, u, r, c.Actor, at)
	})
}

// runCommand validates the run id and executes fn on the loaded run.
func (s *Service) runCommand(ctx context.Context, c Caller, op, runID string, fn func(context.Context, *aggregate.Unit, *runAggregate) error) error {
	if err := ids.Run.Validate("run", runID); err != nil {
		return err
	}
	_, err := s.execute(ctx, op, func(ctx context.Context, u *aggregate.Unit) error {
		r, err := runOf(ctx, u, runID)
		if err != nil {
			return err
		}
		if !r.State().Exists() {
			return fmt.Errorf("run %s: %w", runID, domain.ErrNotFound)
		}
		return fn(ctx, u, r)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, op, "run_id", runID, "actor", c.Actor)
	return nil
}
