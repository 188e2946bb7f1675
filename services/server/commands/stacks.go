package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// stackKind names stacks in name reservation messages.
const stackKind = "stack"

// ResolveStack returns the id of the stack ref names: ref is a stack id
// ("stk_…", returned as is) or a stack name (looked up, case-insensitively).
// An unknown name is domain.ErrNotFound.
func (s *Service) ResolveStack(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", &domain.ValidationError{Field: "stack", Problem: "must not be empty: give a stack id or name"}
	}
	if ids.Stack.Validate("stack", ref) == nil {
		return ref, nil
	}
	owner, err := s.nameOwner(ctx, aggregate.StackName, ref)
	if err != nil {
		return "", err
	}
	if owner == "" {
		return "", fmt.Errorf("stack %q: %w", ref, domain.ErrNotFound)
	}
	return owner, nil
}

// checkStackName refuses names that would read as stack ids.
func checkStackName(name string) error {
	if strings.HasPrefix(name, string(ids.Stack)+"_") {
		return &domain.ValidationError{Field: "name", Problem: fmt.Sprintf("must not start with %q: that prefix is for stack ids", string(ids.Stack)+"_")}
	}
	return nil
}

// CreateStack creates a stack and reserves its name, in one append. The
// worker pool may be given by id or name; it must exist (the public pool
// always does). A non-empty importState (managed state only) becomes the
// stack's state version 1 in the same append: its bytes are stored first
// (an orphan blob, should the append fail, is harmless).
func (s *Service) CreateStack(ctx context.Context, c Caller, settings stack.Settings, managedState bool, importState []byte) (string, error) {
	if err := checkStackName(settings.Name); err != nil {
		return "", err
	}
	if len(importState) > 0 && !managedState {
		return "", &domain.ValidationError{Field: "import_state", Problem: "needs managed state: only a stack whose state Gantry manages can import a state file"}
	}
	if len(importState) > 0 && s.cfg.State == nil {
		return "", errors.New("create stack: this server cannot import state (no state backend configured)")
	}
	poolID, err := s.resolvePoolSetting(ctx, settings.WorkerPoolID)
	if err != nil {
		return "", err
	}
	settings.WorkerPoolID = poolID
	if settings.VCSIntegrationID, err = s.resolveVCSSetting(ctx, settings.VCSIntegrationID); err != nil {
		return "", err
	}
	id, err := newID(ids.Stack)
	if err != nil {
		return "", err
	}
	var imported *eventstore.Batch
	if len(importState) > 0 {
		b, err := s.cfg.State.StageImport(ctx, id, importState, c.Actor)
		if err != nil {
			return "", fmt.Errorf("import_state: %w", err)
		}
		imported = &b
	}
	at := s.now()
	_, err = s.execute(ctx, "create stack", func(ctx context.Context, u *aggregate.Unit) error {
		stk, err := stackOf(ctx, u, id)
		if err != nil {
			return err
		}
		if _, err := stk.Do(stack.Create{StackID: id, Settings: settings, ManagedState: managedState, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		if imported != nil {
			u.Append(*imported)
		}
		return reserveName(ctx, u, aggregate.StackName, stackKind, settings.Name, id, c.Actor, at)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "stack created", "stack_id", id, "actor", c.Actor)
	return id, nil
}

// UpdateStack changes a stack's settings: change edits a copy of the
// current ones. A new name is reserved and the old one released in the same
// append.
func (s *Service) UpdateStack(ctx context.Context, c Caller, ref string, change func(*stack.Settings)) (string, error) {
	id, err := s.ResolveStack(ctx, ref)
	if err != nil {
		return "", err
	}
	_, err = s.execute(ctx, "update stack", func(ctx context.Context, u *aggregate.Unit) error {
		stk, err := stackOf(ctx, u, id)
		if err != nil {
			return err
		}
		if !stk.State().Exists() {
			return fmt.Errorf("stack %s: %w", id, domain.ErrNotFound)
		}
		old := stk.State().Settings()
		next := stk.State().Settings()
		change(&next)
		if err := checkStackName(next.Name); err != nil {
			return err
		}
		if next.WorkerPoolID != old.WorkerPoolID {
			if next.WorkerPoolID, err = s.resolvePoolSetting(ctx, next.WorkerPoolID); err != nil {
				return err
			}
		}
		if next.VCSIntegrationID != old.VCSIntegrationID {
			if next.VCSIntegrationID, err = s.resolveVCSSetting(ctx, next.VCSIntegrationID); err != nil {
				return err
			}
		}
		at := s.now()
		if _, err := stk.Do(stack.UpdateSettings{Settings: next, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		if strings.EqualFold(old.Name, next.Name) {
			return nil
		}
		if err := releaseName(ctx, u, aggregate.StackName, old.Name, id, c.Actor, at); err != nil {
			return err
		}
		return reserveName(ctx, u, aggregate.StackName, stackKind, next.Name, id, c.Actor, at)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "stack updated", "stack_id", id, "actor", c.Actor)
	return id, nil
}

// DeleteStack deletes a stack no run holds or waits for, and frees its
// name. A stack whose managed state holds resources is refused
// (*stack.HasResourcesError) unless force is set; either way its state
// stream and blobs stay, so that its versions are still retrievable by the
// stack's id. The resources are counted in the current state version before
// the append: a run that could change them holds the stack's lock, which
// the delete would meet.
func (s *Service) DeleteStack(ctx context.Context, c Caller, ref string, force bool) (string, error) {
	id, err := s.ResolveStack(ctx, ref)
	if err != nil {
		return "", err
	}
	resources, err := s.managedResources(ctx, id, force)
	if err != nil {
		return "", err
	}
	return s.stackCommand(ctx, c, "delete stack", id, func(ctx context.Context, u *aggregate.Unit, stk *stackAggregate, at time.Time) error {
		stackName := stk.State().Settings().Name
		if _, err := stk.Do(stack.Delete{Force: force, ManagedResources: resources, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return releaseName(ctx, u, aggregate.StackName, stackName, stk.State().ID(), c.Actor, at)
	})
}

// errCannotCount refuses to delete a managed stack without force on a
// server that cannot read state files.
var errCannotCount = errors.New("delete stack: this server cannot read managed state (no state backend configured): delete with force")

// managedResources counts the resources of a managed stack's state for a
// delete; a stack without managed state has none of Gantry's.
func (s *Service) managedResources(ctx context.Context, id string, force bool) (int, error) {
	st, err := s.StackState(ctx, id)
	if err != nil || !st.ManagedState() {
		return 0, err
	}
	if s.cfg.StateContents == nil {
		if force {
			return 0, nil
		}
		return 0, errCannotCount
	}
	n, err := s.cfg.StateContents.ManagedResources(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("delete stack %s: count the resources of its managed state: %w", id, err)
	}
	return n, nil
}

// LockStack takes the manual lock for the caller.
func (s *Service) LockStack(ctx context.Context, c Caller, ref, note string) (string, error) {
	return s.stackCommand(ctx, c, "lock stack", ref, func(_ context.Context, _ *aggregate.Unit, stk *stackAggregate, at time.Time) error {
		_, err := stk.Do(stack.Lock{Note: note, Actor: c.Actor, At: at})
		return err
	})
}

// UnlockStack releases the manual lock and hands the run lock to the head
// of the queue, in one append. Only the holder may unlock, or an
// administrator with force.
func (s *Service) UnlockStack(ctx context.Context, c Caller, ref string, force bool) (string, error) {
	if force && !c.IsAdmin() {
		return "", fmt.Errorf("force unlock: only administrators may release someone else's lock: %w", ErrPermissionDenied)
	}
	return s.stackCommand(ctx, c, "unlock stack", ref, func(ctx context.Context, u *aggregate.Unit, stk *stackAggregate, at time.Time) error {
		if _, err := stk.Do(stack.Unlock{Force: force, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return handOn(ctx, u, stk, c.Actor, at)
	})
}

// SetStackEnv sets an environment variable. A secret value is encrypted
// here, before the command is built: the domain and the events only ever
// see its ciphertext.
func (s *Service) SetStackEnv(ctx context.Context, c Caller, ref, key, value string, secret bool) (string, error) {
	cmd := stack.SetEnv{Key: key, Value: value, Secret: secret, Actor: c.Actor}
	if secret {
		// Check the key first: a bad key must fail the same way for a secret.
		if _, _, err := stack.ParseEnvKey(key); err != nil {
			return "", err
		}
		ciphertext, err := s.cfg.Secrets.Encrypt(ctx, []byte(value))
		if err != nil {
			return "", fmt.Errorf("encrypt the value of %s: %w", key, err)
		}
		cmd.Value, cmd.Ciphertext = "", ciphertext
	}
	return s.stackCommand(ctx, c, "set stack env", ref, func(_ context.Context, _ *aggregate.Unit, stk *stackAggregate, at time.Time) error {
		cmd.At = at
		_, err := stk.Do(cmd)
		return err
	})
}

// DeleteStackEnv removes an environment variable.
func (s *Service) DeleteStackEnv(ctx context.Context, c Caller, ref, key string) (string, error) {
	return s.stackCommand(ctx, c, "delete stack env", ref, func(_ context.Context, _ *aggregate.Unit, stk *stackAggregate, at time.Time) error {
		_, err := stk.Do(stack.DeleteEnv{Key: key, Actor: c.Actor, At: at})
		return err
	})
}

// stackCommand resolves ref and executes fn on the loaded stack.
func (s *Service) stackCommand(ctx context.Context, c Caller, op, ref string, fn func(context.Context, *aggregate.Unit, *stackAggregate, time.Time) error) (string, error) {
	id, err := s.ResolveStack(ctx, ref)
	if err != nil {
		return "", err
	}
	_, err = s.execute(ctx, op, func(ctx context.Context, u *aggregate.Unit) error {
		stk, err := stackOf(ctx, u, id)
		if err != nil {
			return err
		}
		if !stk.State().Exists() {
			return fmt.Errorf("stack %s: %w", id, domain.ErrNotFound)
		}
		return fn(ctx, u, stk, s.now())
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, op, "stack_id", id, "actor", c.Actor)
	return id, nil
}

// KnownStack returns the aggregate state of a stack that exists or was
// deleted: what is kept of a deleted stack (its managed state's versions)
// stays reachable by its id. Only a stack that never existed is
// domain.ErrNotFound.
func (s *Service) KnownStack(ctx context.Context, id string) (stack.State, error) {
	if err := ids.Stack.Validate("stack", id); err != nil {
		return stack.State{}, err
	}
	st, err := aggregate.Load(ctx, s.aggs, aggregate.Stack, id)
	if err != nil {
		return stack.State{}, err
	}
	if !st.Exists() && !st.Deleted() {
		return stack.State{}, fmt.Errorf("stack %s: %w", id, domain.ErrNotFound)
	}
	return st, nil
}

// StackState returns the stack's aggregate state as its events made it
// (not a read model): the managed-state flag, the manual lock and the run
// lock, for decisions such as a state rollback. An unknown stack is
// domain.ErrNotFound.
func (s *Service) StackState(ctx context.Context, id string) (stack.State, error) {
	st, err := aggregate.Load(ctx, s.aggs, aggregate.Stack, id)
	if err != nil {
		return stack.State{}, err
	}
	if !st.Exists() {
		return stack.State{}, fmt.Errorf("stack %s: %w", id, domain.ErrNotFound)
	}
	return st, nil
}
