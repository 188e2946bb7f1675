package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
)

// MigratedPostgres returns a pool on a fresh database (see Postgres) with
// Gantry's schema applied; it is closed when the test ends.
func MigratedPostgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := eventstore.OpenPool(ctx, Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// EventStore returns a fresh migrated database (MigratedPostgres) and an
// event store on it that decodes events with reg; both are closed when the
// test ends.
func EventStore(t testing.TB, reg *eventstore.Registry) (*pgxpool.Pool, *eventstore.Store) {
	t.Helper()
	pool := MigratedPostgres(t)
	store := eventstore.New(pool, reg)
	t.Cleanup(store.Close)
	return pool, store
}
