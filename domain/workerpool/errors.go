package workerpool

import "errors"

// ErrPublicPool: the command is not allowed on the built-in public pool
// (deleting it). See also domain.ErrInvalid, ErrNotFound and ErrAlreadyExists.
var ErrPublicPool = errors.New("not allowed on the public worker pool")
