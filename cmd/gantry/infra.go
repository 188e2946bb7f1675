package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/settings"
)

// externalInfra is the database and NATS of a process that runs against
// shared infrastructure (GANTRY_DATABASE_URL, GANTRY_NATS_URL) rather than
// gantry dev's embedded parts.
type externalInfra struct {
	pool *pgxpool.Pool
	bus  *bus.Bus
}

// openExternalInfra connects to GANTRY_DATABASE_URL and GANTRY_NATS_URL;
// command names the subcommand in the error when either is missing.
func openExternalInfra(ctx context.Context, getenv func(string) string, command string, cfg bus.Config) (*externalInfra, error) {
	dbURL, natsURL := settings.DatabaseURL.Value(getenv), settings.NATSURL.Value(getenv)
	if dbURL == "" || natsURL == "" {
		return nil, fmt.Errorf("%s needs GANTRY_DATABASE_URL and GANTRY_NATS_URL (or run `gantry dev` for embedded defaults)", command)
	}
	pool, err := eventstore.OpenPool(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("GANTRY_DATABASE_URL: %w", err)
	}
	cfg.URL = natsURL
	b, err := bus.Start(ctx, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &externalInfra{pool: pool, bus: b}, nil
}

func (i *externalInfra) close() {
	i.bus.Shutdown()
	i.pool.Close()
}

// runConsumer runs one of the services that scale on their own (projector,
// scheduler) against shared infrastructure, with a NATS connection named
// gantry-<name>, until the command's context ends.
func runConsumer(cmd *cobra.Command, getenv func(string) string, name string,
	run func(ctx context.Context, infra *externalInfra, nc *nats.Conn, log *slog.Logger) error) error {
	log, err := newLogger(getenv)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	infra, err := openExternalInfra(ctx, getenv, name, bus.Config{Logger: log})
	if err != nil {
		return err
	}
	defer infra.close()
	nc, err := infra.bus.Connect("gantry-" + name)
	if err != nil {
		return err
	}
	defer nc.Close()
	return run(ctx, infra, nc, log)
}
