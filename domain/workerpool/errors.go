package workerpool

import (
	"errors"
	"strings"
)

// ErrPublicPool: the command is not allowed on the built-in public pool
// (deleting it). See also domain.ErrInvalid, ErrNotFound and ErrAlreadyExists.
var ErrPublicPool = errors.New("not allowed on the public worker pool")

// ErrInUse is matched by every *InUseError.
var ErrInUse = errors.New("worker pool is in use")

// InUseError refuses to delete a pool that stacks still run on.
type InUseError struct {
	PoolID string
	Stacks []string
}

// Error implements error.
func (e *InUseError) Error() string {
	return "worker pool " + e.PoolID + " is used by stacks " + strings.Join(e.Stacks, ", ") + ": move them to another pool first"
}

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }
