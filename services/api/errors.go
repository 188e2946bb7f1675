package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/gantryhq/gantry/eventstore"
)

// invalidArgumentError says a request field is unacceptable; the client can
// fix the request and retry.
type invalidArgumentError struct {
	field  string
	reason string
}

func (e *invalidArgumentError) Error() string { return e.field + ": " + e.reason }

// errServerStopping ends long-lived streams when the server shuts down, so
// clients reconnect to another replica (or to this one once it is back).
var errServerStopping = errors.New("server is shutting down")

// connectError maps an application error to the Connect error a client sees.
// It is the one place where that mapping happens. Errors the client cannot
// act on become Internal with a generic message and a reference id; the
// detail goes to the log only, so internals (SQL, hosts, paths) never leak.
func connectError(log *slog.Logger, err error) error {
	var invalid *invalidArgumentError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		log.Debug("request canceled", "err", err)
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		log.Debug("request deadline exceeded", "err", err)
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	case errors.As(err, &invalid):
		return connect.NewError(connect.CodeInvalidArgument, invalid)
	case errors.Is(err, errServerStopping):
		return connect.NewError(connect.CodeUnavailable, errServerStopping)
	case errors.Is(err, eventstore.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, eventstore.ErrNotFound)
	case errors.Is(err, eventstore.ErrConflict):
		// Optimistic concurrency: the client reloads and retries.
		return connect.NewError(connect.CodeAborted, eventstore.ErrConflict)
	default:
		ref := uuid.NewString()
		log.Error("request failed", "err", err, "ref", ref)
		return connect.NewError(connect.CodeInternal, errors.New("internal error (ref "+ref+")"))
	}
}
