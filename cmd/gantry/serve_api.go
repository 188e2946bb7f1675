package main

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/api"
	"github.com/gantryhq/gantry/services/auth"
	"github.com/gantryhq/gantry/services/commands"
	"github.com/gantryhq/gantry/services/statebackend"
)

// apiDeps is what the Connect services are built from.
type apiDeps struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	watcher *eventstore.Watcher
	cmds    *commands.Service
	keys    *serverKeys
	states  *statebackend.Service
	log     *slog.Logger
}

// newCommands builds the command layer the API and the worker gateway share.
func newCommands(store *eventstore.Store, waiter *projections.Waiter, keys *serverKeys, states *statebackend.Service,
	publicURL, natsURL string, log *slog.Logger) (*commands.Service, error) {
	return commands.New(commands.Config{
		Store: store, Waiter: waiter, Secrets: keys.keeper, Pools: commands.CAPools{CA: keys.ca}, State: states,
		ServerURL: publicURL, NATSURL: natsURL, Logger: log,
	})
}

// apiRoutes builds every Connect service, each
// behind the authentication interceptor, and mounts the managed-state http
// backend (which authenticates runs with its own credentials).
func apiRoutes(d apiDeps) ([]api.Route, error) {
	cmds := d.cmds
	events, err := api.NewEventService(api.EventServiceConfig{Events: d.store, Changes: d.watcher, Logger: d.log})
	if err != nil {
		return nil, err
	}
	queries := projections.NewQueries(d.pool)
	authn := connect.WithInterceptors(auth.NewInterceptor(d.keys.issuer, d.log))
	return []api.Route{
		events.Route(authn),
		api.NewStackService(cmds, queries, identify, d.log).Route(authn),
		api.NewRunService(cmds, queries, identify, d.log).Route(authn),
		api.NewPoolService(cmds, queries, identify, d.log).Route(authn),
		api.NewStateService(d.states, cmds, identify, d.log).Route(authn),
		{Path: statebackend.PathPrefix, Handler: d.states.Handler()},
	}, nil
}

// identify adapts the principal the authentication interceptor verified to
// the caller commands record.
func identify(ctx context.Context) (commands.Caller, bool) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return commands.Caller{}, false
	}
	return commands.Caller{Actor: p.Actor(), Admin: p.IsAdmin()}, true
}
