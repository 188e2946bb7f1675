package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/api"
	"github.com/gantryhq/gantry/services/bus"
)

// serverConfig is what a server process needs besides its infrastructure.
type serverConfig struct {
	listen string
	log    *slog.Logger
	// ready is called once the API listens, with the components' lines.
	ready func(lines []component)
}

type component struct{ name, where string }

// runServer runs the server-side services on pool and b until ctx ends:
// the schema migrations, the relay (standing by while another process's is
// active) and the Connect API.
func runServer(ctx context.Context, pool *pgxpool.Pool, b *bus.Bus, cfg serverConfig) error {
	log := cfg.log
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		return err
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		return err
	}
	store := eventstore.New(pool, reg, eventstore.WithLogger(log))
	defer store.Close()
	watcher := eventstore.NewWatcher(pool, log)

	nc, err := b.Connect("gantry-relay")
	if err != nil {
		return fmt.Errorf("connect the relay to NATS: %w", err)
	}
	defer nc.Close()
	relay, err := eventstore.NewRelay(pool, nc, eventstore.RelayConfig{Logger: log})
	if err != nil {
		return err
	}

	events, err := api.NewEventService(api.EventServiceConfig{Events: store, Changes: watcher, Logger: log})
	if err != nil {
		return err
	}
	srv, err := api.New(api.Config{Listen: cfg.listen, Logger: log}, events.Route())
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	wg.Go(func() { _ = watcher.Run(ctx) })
	wg.Go(func() { _ = relay.Run(ctx) })
	errc := make(chan error, 1)
	wg.Go(func() { errc <- srv.Serve(ctx) })
	if cfg.ready != nil {
		cfg.ready([]component{
			{"relay", "publishing committed events to JetStream stream " + eventstore.EventsStream},
			{"api", "http://" + srv.Addr().String()},
		})
	}
	wg.Wait()
	return <-errc
}

// newLogger returns the JSON logger of server-side commands, at the level
// GANTRY_LOG_LEVEL names (debug, info, warn, error; default info).
func newLogger(getenv func(string) string) (*slog.Logger, error) {
	var level slog.Level
	if v := getenv("GANTRY_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(strings.ToLower(v))); err != nil {
			return nil, fmt.Errorf("GANTRY_LOG_LEVEL=%q: use debug, info, warn or error", v)
		}
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
