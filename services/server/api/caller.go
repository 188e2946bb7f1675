package api

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/commands"
)

// Identify returns the verified caller of a request; the wiring adapts the
// authentication interceptor's principal to it. ok is false when the
// request carries no verified caller.
type Identify func(ctx context.Context) (caller commands.Caller, ok bool)

// handlerBase is what every service's handlers share: who the caller is,
// and where failures are logged and mapped to Connect errors.
type handlerBase struct {
	identify Identify
	log      *slog.Logger
}

// command returns ctx carrying the event metadata of a command by the
// request's caller, and the caller: every event the command appends names
// the caller as its actor and shares one correlation id per request.
func (h handlerBase) command(ctx context.Context) (context.Context, commands.Caller, error) {
	c, ok := h.identify(ctx)
	if !ok || c.Actor == "" {
		return nil, commands.Caller{}, errUnauthenticated
	}
	md := eventstore.Metadata{Actor: c.Actor, CorrelationID: uuid.NewString()}
	return eventstore.WithMetadata(ctx, md), c, nil
}

// fail maps err to the Connect error the client sees (see connectError).
func (h handlerBase) fail(err error) error { return connectError(h.log, err) }
