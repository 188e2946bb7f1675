package projections

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
)

// RebuildPageSize is how many events a rebuild applies per transaction.
const RebuildPageSize = 5000

// Rebuild empties the tables of the named projections (all of All() when
// none is named) and replays every event into them from the start. Each
// projection's truncate and checkpoint reset happen in one transaction
// holding its checkpoint's row lock, so projectors running meanwhile never
// interleave with it: they wait, then carry on from the reset checkpoint
// just like the rebuild. Readers see the tables empty, then filling up.
// Rebuild returns once the projections include every event committed before
// it started. An unknown name is an error that lists the known ones.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, logger *slog.Logger, names ...string) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &engine{pool: pool, store: store, log: logger.With("component", "projections"), all: All()}
	return g.rebuild(ctx, names)
}

func (g *engine) rebuild(ctx context.Context, names []string) error {
	ps, err := selectProjections(g.all, names)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	start := time.Now()
	for _, p := range ps {
		if err := g.reset(ctx, p); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	g.log.Info("rebuilding projections", "projections", namesOf(ps))
	if err := joinFailures(ps, g.catchUpToHead(ctx, ps, RebuildPageSize)); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	g.log.Info("rebuilt projections", "projections", namesOf(ps), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
