package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/statebackend"
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

// errUnauthenticated answers a request that reached a handler without a
// verified caller (the authentication interceptor was not installed): it
// says no more than the interceptor would.
var errUnauthenticated = errors.New("missing or invalid token")

// errInvalidAPIKey is all a caller learns of a refused API key.
var errInvalidAPIKey = errors.New("invalid or revoked API key")

// connectError maps an application error to the Connect error a client sees.
// It is the one place where that mapping happens. The messages of domain
// errors are made for the client (they name the field, the current state or
// the lock holder) and pass through. Errors the client cannot act on become
// Internal with a generic message and a reference id; the detail goes to
// the log only, so internals (SQL, hosts, paths) never leak.
func connectError(log *slog.Logger, err error) error {
	var invalid *invalidArgumentError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errUnauthenticated):
		return connect.NewError(connect.CodeUnauthenticated, errUnauthenticated)
	case errors.Is(err, auth.ErrInvalidAPIKey):
		// Which check failed (form, id, revocation, secret) helps only
		// someone guessing keys: it goes to the log.
		log.Info("API key refused", "reason", err.Error())
		return connect.NewError(connect.CodeUnauthenticated, errInvalidAPIKey)
	case errors.Is(err, commands.ErrNotCaughtUp):
		// The change is recorded: DeadlineExceeded is the code that says an
		// operation may have completed although the call failed.
		log.Warn("read models lag behind", "err", err)
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New(clientMessage(err)))
	case errors.Is(err, errReadLag):
		log.Warn("read models lag behind an event a client waits for", "err", err)
		return connect.NewError(connect.CodeUnavailable, errReadLag)
	case errors.Is(err, context.Canceled):
		log.Debug("request canceled", "err", err)
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		log.Debug("request deadline exceeded", "err", err)
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	case errors.As(err, &invalid):
		return connect.NewError(connect.CodeInvalidArgument, invalid)
	case errors.Is(err, domain.ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, errors.New(clientMessage(err)))
	case errors.Is(err, errServerStopping):
		return connect.NewError(connect.CodeUnavailable, errServerStopping)
	case errors.Is(err, eventstore.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, eventstore.ErrNotFound)
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, projections.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New(clientMessage(err)))
	case errors.Is(err, projections.ErrInvalidPageToken):
		return connect.NewError(connect.CodeInvalidArgument, errors.New("page_token: "+clientMessage(err)))
	case errors.Is(err, domain.ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, errors.New(clientMessage(err)))
	case errors.Is(err, statebackend.ErrCorrupt):
		// The stored bytes do not match their recorded checksum: the detail
		// (blob key) goes to the log only.
		ref := uuid.NewString()
		log.Error("stored state is corrupt", "err", err, "ref", ref)
		return connect.NewError(connect.CodeDataLoss, errors.New("stored state does not match its recorded checksum (ref "+ref+")"))
	case errors.Is(err, commands.ErrPermissionDenied):
		return connect.NewError(connect.CodePermissionDenied, errors.New(clientMessage(err)))
	case isFailedPrecondition(err):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(clientMessage(err)))
	case errors.Is(err, eventstore.ErrConflict):
		// Optimistic concurrency: the client reloads and retries.
		return connect.NewError(connect.CodeAborted, eventstore.ErrConflict)
	default:
		ref := uuid.NewString()
		log.Error("request failed", "err", err, "ref", ref)
		return connect.NewError(connect.CodeInternal, errors.New("internal error (ref "+ref+")"))
	}
}

// isFailedPrecondition reports errors that refuse a valid request because
// of the current state: an illegal run transition (naming the run's state),
// a stack lock (naming its holder), a gone or busy worker, the public pool,
// a stack repository that cannot serve a run, a state rollback whose
// preconditions do not hold (or a Terraform lock in the way), a stack
// without managed state, a stack delete while its managed state holds
// resources, a pool delete while stacks use the pool.
func isFailedPrecondition(err error) bool {
	for _, target := range []error{
		run.ErrIllegalTransition, stack.ErrLockedByOther, stack.ErrLockBusy, stack.ErrNotQueued, stack.ErrInUse,
		stack.ErrHasResources, worker.ErrGone, worker.ErrNotIdle, workerpool.ErrPublicPool, workerpool.ErrInUse, commands.ErrRepository,
		state.ErrNotAllowed, state.ErrLocked, state.ErrConflict, statebackend.ErrNotManaged, delivery.ErrNotReplayable,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// clientMessage is the message of an error whose text is made for clients,
// on one line (joined problems are separated by "; ").
func clientMessage(err error) string {
	return strings.Join(strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' }), "; ")
}
