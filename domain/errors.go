// Package domain holds what every Gantry aggregate shares: the error kinds
// callers map to API codes in one place, and small pure validation helpers.
// The aggregates themselves live in the sub-packages (run, stack, workerpool,
// worker, state, name); none of them performs I/O or reads a clock.
package domain

import (
	"errors"
	"fmt"
)

// The error kinds every aggregate's Decide returns (wrapped), so an API layer
// can map them to status codes with errors.Is, whatever the aggregate.
var (
	// ErrInvalid is matched by every *ValidationError: a command's input is bad.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound: the command targets an aggregate that does not exist (or was deleted).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a create command targets an aggregate that already exists.
	// Ids are never reused, so this also holds for a deleted aggregate.
	ErrAlreadyExists = errors.New("already exists")
)

// ValidationError names the command field that is wrong and says why.
type ValidationError struct {
	Field   string // snake_case, as the API and the events spell it
	Problem string
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Problems collects validation failures so one command reports all of its
// problems at once instead of making the user fix them one round trip at a time.
type Problems []error

// Add records that field has problem.
func (p *Problems) Add(field, problem string) {
	*p = append(*p, &ValidationError{Field: field, Problem: problem})
}

// Addf records a formatted problem for field.
func (p *Problems) Addf(field, format string, args ...any) {
	p.Add(field, fmt.Sprintf(format, args...))
}

// Check records err if it is not nil.
func (p *Problems) Check(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

// Err returns nil, the single problem, or all of them joined.
func (p Problems) Err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return errors.Join(p...)
}
