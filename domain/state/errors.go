package state

import (
	"errors"
	"fmt"
)

// Errors specific to managed state; see also domain.ErrInvalid, ErrNotFound
// and ErrAlreadyExists.
var (
	// ErrConflict is matched by *SerialError, *LineageError and
	// *LockNotHeldError: the write does not fit the stored state. The http
	// backend answers 409 with the error's message.
	ErrConflict = errors.New("state conflict")
	// ErrLocked is matched by every *LockedError: someone else holds the lock.
	ErrLocked = errors.New("state is locked")
	// ErrNotAllowed is matched by every *NotAllowedError: a rollback's
	// preconditions do not hold.
	ErrNotAllowed = errors.New("not allowed")
)

// SerialError refuses a write that would move the serial backwards.
type SerialError struct {
	Current, Proposed uint64
}

// Error implements error.
func (e *SerialError) Error() string {
	return fmt.Sprintf("state serial %d is lower than the current serial %d: refusing to move the state backwards", e.Proposed, e.Current)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *SerialError) Is(target error) bool { return target == ErrConflict }

// LineageError refuses a write of a different state (another lineage) over
// the existing one.
type LineageError struct {
	Current, Proposed string
}

// Error implements error.
func (e *LineageError) Error() string {
	return fmt.Sprintf("state lineage %q differs from the current lineage %q: refusing to replace the state with an unrelated one", e.Proposed, e.Current)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *LineageError) Is(target error) bool { return target == ErrConflict }

// LockNotHeldError refuses a request that names a lock the state is not
// locked with: the lock was released (perhaps forced) since it was taken.
type LockNotHeldError struct {
	LockID string
}

// Error implements error.
func (e *LockNotHeldError) Error() string {
	return fmt.Sprintf("the state is not locked with lock %q (was it force-unlocked?)", e.LockID)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *LockNotHeldError) Is(target error) bool { return target == ErrConflict }

// LockedError says the lock is held by someone else; Holder says by whom,
// and Holder.Info is the lock info JSON terraform shows the user.
type LockedError struct {
	Holder Holder
}

// Error implements error.
func (e *LockedError) Error() string {
	msg := fmt.Sprintf("state is locked: lock %q", e.Holder.LockID)
	if e.Holder.RunID != "" {
		msg += " taken by run " + e.Holder.RunID
	}
	return msg
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// NotAllowedError says why a rollback cannot happen now.
type NotAllowedError struct {
	Reason string
}

// Error implements error.
func (e *NotAllowedError) Error() string { return "rollback not allowed: " + e.Reason }

// Is makes errors.Is(err, ErrNotAllowed) true.
func (e *NotAllowedError) Is(target error) bool { return target == ErrNotAllowed }
