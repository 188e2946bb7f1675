package commands_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) {
	testenv.MainNoLeaks(m)
}

// testTimeout bounds each command a test runs.
const testTimeout = 30 * time.Second

// env is the command layer on real infrastructure: a fresh database, an
// embedded NATS server, the relay, the projector and its waiter.
type env struct {
	store *eventstore.Store
	pool  *pgxpool.Pool
	cfg   commands.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL and NATS")
	}
	ctx := context.Background()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	pool, store := testenv.EventStore(t, reg)

	nats := testenv.NATS(t)
	nc := nats.Connect(t, "commands-test")
	relay, err := eventstore.NewRelay(pool, nc, eventstore.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projections.NewProjector(projections.Config{Pool: pool, Store: store, NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	waiter := projections.NewWaiter(pool, nil)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = relay.Run(runCtx) })
	wg.Go(func() { _ = proj.Run(runCtx) })
	wg.Go(func() { _ = waiter.Run(runCtx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keeper, err := keyring.OpenKeeper(ctx, "base64key://"+base64.URLEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keeper.Close() })
	ca, err := keyring.LoadOrCreateCA(ctx, keyring.NewKeyStore(pool, keeper), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: store, pool: pool, cfg: commands.Config{
		Aggregates: testenv.Aggregates(t, store), Waiter: waiter, Secrets: keeper, Pools: commands.CAPools{CA: ca},
		ServerURL: "http://gantry.test:1983", NATSURL: nats.URL(),
	}}
}

// service returns a command service on the env, with cfg's changes.
func (e *env) service(t *testing.T, change func(*commands.Config)) *commands.Service {
	t.Helper()
	cfg := e.cfg
	if change != nil {
		change(&cfg)
	}
	s, err := commands.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// count returns the number of stored events of a type.
func (e *env) count(t *testing.T, eventType string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE event_type = $1", eventType).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: "user:test", CorrelationID: t.Name()})
}
