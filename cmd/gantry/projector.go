package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/supervisor"
)

// projector is the in-process projector of a server, with the waiter that
// gives the API read-your-writes.
type projector struct {
	p      *projections.Projector
	waiter *projections.Waiter
	names  []string
}

func newProjector(pool *pgxpool.Pool, store *eventstore.Store, nc *nats.Conn, log *slog.Logger) (*projector, error) {
	p, err := projections.NewProjector(projections.Config{Pool: pool, Store: store, NATS: nc, Logger: log})
	if err != nil {
		return nil, err
	}
	return &projector{p: p, waiter: projections.NewWaiter(pool, log), names: projections.Names()}, nil
}

// runProjector runs only the projector, supervised, against pool and NATS
// until ctx ends.
func runProjector(ctx context.Context, pool *pgxpool.Pool, nc *nats.Conn, log *slog.Logger) error {
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		return err
	}
	store, err := openStore(pool, log)
	if err != nil {
		return err
	}
	defer store.Close()
	p, err := projections.NewProjector(projections.Config{Pool: pool, Store: store, NATS: nc, Logger: log})
	if err != nil {
		return err
	}
	log.Info("projector running", "projections", projections.Names())
	return supervisor.Run(ctx, supervisor.Config{Logger: log}, supervisor.Component{Name: "projector", Run: p.Run})
}

// rebuildProjections empties the named read models (all when none) and
// replays every event into them.
func rebuildProjections(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, names ...string) error {
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		return err
	}
	store, err := openStore(pool, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := projections.Rebuild(ctx, pool, store, log, names...); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}

// openStore opens the event store with the registry every writer
// uses, so that the projector decodes every event type it may meet.
func openStore(pool *pgxpool.Pool, log *slog.Logger) (*eventstore.Store, error) {
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		return nil, err
	}
	return eventstore.New(pool, reg, eventstore.WithLogger(log)), nil
}
