package statebackend

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/eventstore"
)

// The administrative operations. Authorization (an administrator's token)
// is the caller's job; each operation is recorded with its actor.

// Versions lists the stack's state versions, oldest first: serial, time,
// run, size and checksums, from the event stream.
func (s *Service) Versions(ctx context.Context, stackID string) ([]state.Version, error) {
	st, err := s.State(ctx, stackID)
	if err != nil {
		return nil, err
	}
	return st.Versions(), nil
}

// Download returns the bytes of version n (0: the current version), verified
// against its checksum, and records that actor downloaded it.
func (s *Service) Download(ctx context.Context, stackID string, n int, actor string) ([]byte, state.Version, error) {
	st, err := s.State(ctx, stackID)
	if err != nil {
		return nil, state.Version{}, err
	}
	v, ok := st.VersionAt(n)
	if n == 0 {
		v, ok = st.Current()
	}
	if !ok {
		return nil, state.Version{}, fmt.Errorf("stack %s: state version %d: %w", stackID, n, domain.ErrNotFound)
	}
	data, err := s.readVersion(ctx, v)
	if err != nil {
		return nil, state.Version{}, err
	}
	// Recorded before the bytes are handed out: no download goes unrecorded.
	_, err = s.update(withActor(ctx, actor, ""), stackID, func(_ context.Context, a *stateAggregate) (*pendingBlob, error) {
		_, err := a.Do(state.RecordDownload{Version: v.Version, Actor: actor, At: s.now()})
		return nil, err
	})
	if err != nil {
		return nil, state.Version{}, err
	}
	return data, v, nil
}

// parseImport checks an imported state file's size and format.
func (s *Service) parseImport(stackID string, stateJSON []byte) (*stateFile, error) {
	if err := ids.Stack.Validate("stack_id", stackID); err != nil {
		return nil, err
	}
	if int64(len(stateJSON)) > s.cfg.MaxStateSize {
		return nil, &TooLargeError{What: "state file", Size: int64(len(stateJSON)), Max: s.cfg.MaxStateSize}
	}
	return parseState(stateJSON)
}

// Import stores stateJSON as the first version of an existing managed-state
// stack that has no state yet.
func (s *Service) Import(ctx context.Context, stackID string, stateJSON []byte, actor string) (state.Version, error) {
	f, err := s.parseImport(stackID, stateJSON)
	if err != nil {
		return state.Version{}, err
	}
	stk, err := s.loadStack(ctx, stackID)
	if err != nil {
		return state.Version{}, err
	}
	if !stk.Exists() {
		return state.Version{}, fmt.Errorf("import state: stack %s: %w", stackID, domain.ErrNotFound)
	}
	if !stk.ManagedState() {
		return state.Version{}, fmt.Errorf("import state: stack %s: %w", stackID, ErrNotManaged)
	}
	st, err := s.update(withActor(ctx, actor, ""), stackID, func(_ context.Context, a *stateAggregate) (*pendingBlob, error) {
		key := blobKey(stackID, a.State().NextVersion(), hex.EncodeToString(f.sha256[:]))
		events, err := a.Do(state.Import{StackID: stackID, Content: f.content(key), Actor: actor, At: s.now()})
		if err != nil || len(events) == 0 {
			return nil, err
		}
		return &pendingBlob{key: key, data: f.data}, nil
	})
	if err != nil {
		return state.Version{}, err
	}
	v, _ := st.Current()
	return v, nil
}

// StageImport prepares the import of stateJSON into a stack being created:
// it validates the file, stores its bytes, and returns the state stream's
// first events for the caller to append in the same AppendAll as the
// StackCreated event (with ManagedState set), so that a stack never exists
// without the state it was created with.
func (s *Service) StageImport(ctx context.Context, stackID string, stateJSON []byte, actor string) (eventstore.Batch, error) {
	f, err := s.parseImport(stackID, stateJSON)
	if err != nil {
		return eventstore.Batch{}, err
	}
	var none state.State
	key := blobKey(stackID, none.NextVersion(), hex.EncodeToString(f.sha256[:]))
	events, err := state.Decide(none, state.Import{StackID: stackID, Content: f.content(key), Actor: actor, At: s.now()})
	if err != nil {
		return eventstore.Batch{}, err
	}
	if err := s.writeBlob(ctx, &pendingBlob{key: key, data: f.data}); err != nil {
		return eventstore.Batch{}, err
	}
	return eventstore.Batch{Stream: StreamOf(stackID), Expected: eventstore.NoStream, Events: toAny(events)}, nil
}

// RollbackFacts are what a rollback needs to know about the stack.
type RollbackFacts struct {
	HoldsStackLock bool // the actor holds the stack's manual lock
	RunInProgress  bool // a run holds the stack's run lock
}

// RollbackFactsOf reads the facts from the stack aggregate.
func RollbackFactsOf(st stack.State, actor string) RollbackFacts {
	l, locked := st.ManualLock()
	return RollbackFacts{HoldsStackLock: locked && l.By == actor, RunInProgress: st.LockHolder() != ""}
}

// Rollback stores the content of version n as a new version, recorded with
// actor. The old bytes are verified against their checksum and copied to the
// new version's key.
func (s *Service) Rollback(ctx context.Context, stackID string, n int, actor string, facts RollbackFacts) (state.Version, error) {
	if err := ids.Stack.Validate("stack_id", stackID); err != nil {
		return state.Version{}, err
	}
	st, err := s.update(withActor(ctx, actor, ""), stackID, func(ctx context.Context, a *stateAggregate) (*pendingBlob, error) {
		old, _ := a.State().VersionAt(n)
		key := blobKey(stackID, a.State().NextVersion(), old.SHA256)
		events, err := a.Do(state.Rollback{StackID: stackID, ToVersion: n, BlobKey: key,
			HoldsStackLock: facts.HoldsStackLock, RunInProgress: facts.RunInProgress, Actor: actor, At: s.now()})
		if err != nil || len(events) == 0 {
			return nil, err
		}
		data, err := s.readVersion(ctx, old)
		if err != nil {
			return nil, err
		}
		return &pendingBlob{key: key, data: data}, nil
	})
	if err != nil {
		return state.Version{}, err
	}
	v, _ := st.Current()
	return v, nil
}

// ForceUnlock releases the Terraform lock whoever holds it (an
// administrator's action, recorded as a forced unlock by actor).
func (s *Service) ForceUnlock(ctx context.Context, stackID, actor string) error {
	if err := ids.Stack.Validate("stack_id", stackID); err != nil {
		return err
	}
	_, err := s.update(withActor(ctx, actor, ""), stackID, func(_ context.Context, a *stateAggregate) (*pendingBlob, error) {
		_, err := a.Do(state.Unlock{Admin: true, Actor: actor, At: s.now()})
		return nil, err
	})
	return err
}

func toAny(events []state.Event) []any {
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = e
	}
	return out
}
