package eventstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }

// Test event types. Names are explicit, as in the domain packages.
type thingCreated struct {
	Name string `json:"name"`
}

type thingRenamed struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

type unserializable struct {
	C chan int `json:"c"`
}

func testRegistry(t testing.TB) *eventstore.Registry {
	t.Helper()
	reg := eventstore.NewRegistry()
	for name, proto := range map[string]any{
		"ThingCreated":   thingCreated{},
		"ThingRenamed":   thingRenamed{},
		"Unserializable": unserializable{},
	} {
		if err := reg.Register(name, 1, proto); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// newPool opens a pool on a fresh, migrated database.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := openPool(t)
	if _, err := eventstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// openPool opens a pool on a fresh, empty database.
func openPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newStore(t testing.TB) (*eventstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t)
	s := eventstore.New(pool, testRegistry(t))
	t.Cleanup(s.Close)
	return s, pool
}

func countEvents(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
