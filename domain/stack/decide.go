package stack

import (
	"bytes"
	"fmt"
	"reflect"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
)

// MaxNoteLength bounds the note of a manual lock.
const MaxNoteLength = 2000

// Decide returns the events c causes on the stack s, or an error: a
// *domain.ValidationError for bad input, domain.ErrNotFound for a stack that
// does not exist (or was deleted), domain.ErrAlreadyExists for creating an
// existing one, a *LockedByOtherError when a manual lock refuses, or
// ErrLockBusy, ErrNotQueued, ErrInUse. No events and no error means c
// changes nothing. s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Create:
		return create(s, c)
	case UpdateSettings:
		return s.updateSettings(c)
	case Delete:
		return s.delete(c)
	case SetEnv:
		return s.setEnv(c)
	case DeleteEnv:
		return s.deleteEnv(c)
	case MountFile:
		return s.mountFile(c)
	case Lock:
		return s.lock(c)
	case Unlock:
		return s.unlock(c)
	case EnqueueRun:
		return s.enqueueRun(c)
	case AcquireLock:
		return s.acquireLock(c)
	case ReleaseLock:
		return s.releaseLock(c)
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown stack command %T", c)}
}

// precheck validates the command's origin on top of the problems already
// found, then requires that the stack exists.
func (s State) precheck(actor string, at time.Time, p domain.Problems) error {
	p.CheckOrigin(actor, at)
	if err := p.Err(); err != nil {
		return err
	}
	if !s.created {
		return fmt.Errorf("stack: %w", domain.ErrNotFound)
	}
	if s.deleted {
		return fmt.Errorf("stack %s was deleted: %w", s.id, domain.ErrNotFound)
	}
	return nil
}

// lockedAgainst returns a *LockedByOtherError when someone other than actor
// holds the manual lock.
func (s State) lockedAgainst(actor string) error {
	if s.manualLock != nil && s.manualLock.By != actor {
		return &LockedByOtherError{Holder: s.manualLock.By}
	}
	return nil
}

func create(s State, c Create) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Stack.Validate("stack_id", c.StackID))
	settings, err := c.Settings.normalize()
	p.Check(err)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.created {
		return nil, fmt.Errorf("stack %s: %w", s.id, domain.ErrAlreadyExists)
	}
	return []Event{StackCreated{StackID: c.StackID, Settings: settings, ManagedState: c.ManagedState, At: c.At, Actor: c.Actor}}, nil
}

func (s State) updateSettings(c UpdateSettings) ([]Event, error) {
	var p domain.Problems
	settings, err := c.Settings.normalize()
	p.Check(err)
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if reflect.DeepEqual(settings, s.settings) {
		return nil, nil
	}
	return []Event{StackSettingsUpdated{Settings: settings, At: c.At, Actor: c.Actor}}, nil
}

func (s State) delete(c Delete) ([]Event, error) {
	var p domain.Problems
	if c.ManagedResources < 0 {
		p.Add("managed_resources", "must not be negative")
	}
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if s.lockHolder != "" || len(s.queue) > 0 {
		return nil, fmt.Errorf("stack %s: lock held by %q, %d run(s) queued: %w", s.id, s.lockHolder, len(s.queue), ErrInUse)
	}
	if err := s.lockedAgainst(c.Actor); err != nil {
		return nil, err
	}
	resources := 0
	if s.managedState {
		resources = c.ManagedResources
	}
	if resources > 0 && !c.Force {
		return nil, &HasResourcesError{StackID: s.id, Resources: resources}
	}
	return []Event{StackDeleted{Forced: resources > 0, ManagedResources: resources, At: c.At, Actor: c.Actor}}, nil
}

func (s State) setEnv(c SetEnv) ([]Event, error) {
	var p domain.Problems
	name, scope, err := ParseEnvKey(c.Key)
	p.Check(err)
	checkEnvValue(&p, c.Secret, c.Value, c.Ciphertext)
	if _, ok := s.files[c.Key]; ok {
		p.Addf("key", "%s is the path of a mounted file of this stack: delete the file first", c.Key)
	}
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if old, ok := s.env[c.Key]; ok && old.Secret == c.Secret && old.Value == c.Value && bytes.Equal(old.Ciphertext, c.Ciphertext) {
		return nil, nil
	}
	return []Event{StackEnvSet{
		Key: c.Key, Name: name, Scope: scope, Secret: c.Secret, Value: c.Value,
		Ciphertext: bytes.Clone(c.Ciphertext), At: c.At, Actor: c.Actor,
	}}, nil
}

func (s State) deleteEnv(c DeleteEnv) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if _, ok := s.env[c.Key]; ok {
		return []Event{StackEnvDeleted{Key: c.Key, At: c.At, Actor: c.Actor}}, nil
	}
	if _, ok := s.files[c.Key]; ok {
		return []Event{StackFileUnmounted{Path: c.Key, At: c.At, Actor: c.Actor}}, nil
	}
	return nil, fmt.Errorf("stack %s: no environment variable or mounted file %q: %w", s.id, c.Key, domain.ErrNotFound)
}

func (s State) lock(c Lock) ([]Event, error) {
	var p domain.Problems
	p.CheckText("note", c.Note, MaxNoteLength, false)
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if err := s.lockedAgainst(c.Actor); err != nil {
		return nil, err
	}
	if s.manualLock != nil {
		return nil, nil // the actor already holds it
	}
	return []Event{StackLocked{Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) unlock(c Unlock) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if s.manualLock == nil {
		return nil, nil
	}
	if !c.Force {
		if err := s.lockedAgainst(c.Actor); err != nil {
			return nil, err
		}
	}
	return []Event{StackUnlocked{Holder: s.manualLock.By, Forced: c.Force && s.manualLock.By != c.Actor, At: c.At, Actor: c.Actor}}, nil
}

func (s State) enqueueRun(c EnqueueRun) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", c.RunID))
	if !c.RunType.Valid() {
		p.Addf("run_type", "unknown run type %q", c.RunType)
	}
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if c.RunType == run.Proposed || s.lockHolder == c.RunID || s.queued(c.RunID) >= 0 {
		return nil, nil
	}
	if err := s.lockedAgainst(c.Actor); err != nil {
		return nil, err
	}
	return []Event{StackRunEnqueued{RunID: c.RunID, RunType: c.RunType, At: c.At, Actor: c.Actor}}, nil
}

func (s State) acquireLock(c AcquireLock) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", c.RunID))
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	switch i := s.queued(c.RunID); {
	case s.lockHolder == c.RunID:
		return nil, nil
	case i < 0:
		return nil, fmt.Errorf("stack %s: run %s: %w", s.id, c.RunID, ErrNotQueued)
	case s.lockHolder != "":
		return nil, fmt.Errorf("stack %s: held by run %s: %w", s.id, s.lockHolder, ErrLockBusy)
	case i > 0:
		return nil, fmt.Errorf("stack %s: run %s is ahead in the queue: %w", s.id, s.queue[0].runID, ErrLockBusy)
	}
	// A manual lock admits only its holder's runs, even at the head of the
	// queue: a run queued before the lock was taken waits for the unlock.
	if err := s.lockedAgainst(s.queue[0].triggeredBy); err != nil {
		return nil, err
	}
	return []Event{StackLockAcquired{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
}

func (s State) releaseLock(c ReleaseLock) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", c.RunID))
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	switch {
	case s.lockHolder == c.RunID:
		return []Event{StackLockReleased{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
	case s.queued(c.RunID) >= 0:
		return []Event{StackRunDequeued{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
	}
	return nil, nil
}
