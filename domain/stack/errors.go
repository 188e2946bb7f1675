package stack

import (
	"errors"
	"fmt"
)

// Errors specific to stacks; see also domain.ErrInvalid, ErrNotFound and
// ErrAlreadyExists.
var (
	// ErrLockedByOther is matched by every *LockedByOtherError.
	ErrLockedByOther = errors.New("stack is locked by someone else")
	// ErrLockBusy: the run lock is held by another run, or another run is
	// ahead in the queue. The caller waits for a ReleaseLock and tries again.
	ErrLockBusy = errors.New("stack lock is busy")
	// ErrNotQueued: AcquireLock for a run that is not in the queue.
	ErrNotQueued = errors.New("run is not queued on the stack")
	// ErrInUse: the stack cannot be deleted while a run holds or waits for its lock.
	ErrInUse = errors.New("stack is in use")
	// ErrHasResources is matched by every *HasResourcesError.
	ErrHasResources = errors.New("the stack's managed state holds resources")
)

// HasResourcesError refuses to delete a stack whose managed state still
// holds resources, without force.
type HasResourcesError struct {
	StackID   string
	Resources int
}

// Error implements error.
func (e *HasResourcesError) Error() string {
	return fmt.Sprintf("stack %s: its managed state holds %d resource(s): destroy them first (a destroy run), or delete with force to keep the state, and the resources, unmanaged",
		e.StackID, e.Resources)
}

// Is makes errors.Is(err, ErrHasResources) true.
func (e *HasResourcesError) Is(target error) bool { return target == ErrHasResources }

// LockedByOtherError says a user's manual lock refuses the command.
type LockedByOtherError struct {
	Holder string
}

// Error implements error.
func (e *LockedByOtherError) Error() string { return "stack is locked by " + e.Holder }

// Is makes errors.Is(err, ErrLockedByOther) true.
func (e *LockedByOtherError) Is(target error) bool { return target == ErrLockedByOther }
