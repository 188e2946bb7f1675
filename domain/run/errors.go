package run

import "errors"

// ErrIllegalTransition is matched (errors.Is) by every *IllegalTransitionError.
var ErrIllegalTransition = errors.New("illegal run transition")

// ErrStopPending is matched (errors.Is) by the refusal to start a phase of a
// run whose stop was requested: the worker should end the run STOPPED.
var ErrStopPending = errors.New("a stop was requested")

// IllegalTransitionError says a command is not allowed in the run's current
// status. Reason is set when the status alone does not explain it (no worker
// assigned, a stop was requested, the phase already reported).
type IllegalTransitionError struct {
	From    Status
	Command string
	Reason  string
}

// Error implements error.
func (e *IllegalTransitionError) Error() string {
	msg := "run: " + e.Command + " is not allowed in status " + string(e.From)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Is makes errors.Is(err, ErrIllegalTransition) true, and
// errors.Is(err, ErrStopPending) when a pending stop is the reason.
func (e *IllegalTransitionError) Is(target error) bool {
	return target == ErrIllegalTransition || target == ErrStopPending && e.Reason == ErrStopPending.Error()
}
