package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/bus"
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
	dbURL, natsURL := getenv("GANTRY_DATABASE_URL"), getenv("GANTRY_NATS_URL")
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
