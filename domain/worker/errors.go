package worker

import (
	"errors"
	"fmt"
)

// Errors specific to workers; see also domain.ErrInvalid, ErrNotFound and
// ErrAlreadyExists.
var (
	// ErrGone: the worker was lost or exited; its launcher must register a new worker.
	ErrGone = errors.New("worker is gone")
	// ErrNotIdle is matched by every *NotIdleError.
	ErrNotIdle = errors.New("worker is not idle")
)

// NotIdleError says a worker cannot take a run: it is BUSY with RunID, or DRAINED.
type NotIdleError struct {
	Status Status
	RunID  string
}

// Error implements error.
func (e *NotIdleError) Error() string {
	if e.RunID != "" {
		return fmt.Sprintf("worker is %s with run %s", e.Status, e.RunID)
	}
	return "worker is " + string(e.Status)
}

// Is makes errors.Is(err, ErrNotIdle) true.
func (e *NotIdleError) Is(target error) bool { return target == ErrNotIdle }
