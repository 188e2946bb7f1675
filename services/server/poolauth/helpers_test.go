package poolauth_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

const actor = "user:test"

// env is a migrated database with its event store, and an embedded NATS whose pool launchers
// are checked by a poolauth.Verifier on that store.
type env struct {
	db    *pgxpool.Pool
	store *eventstore.Store
	bus   *bus.Bus
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	db, store := testenv.EventStore(t, reg)
	b, err := bus.Start(ctx, bus.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Pools: poolauth.New(testenv.Aggregates(t, store))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return &env{db: db, store: store, bus: b}
}

// decide runs cmd against pool's current state and appends the events it decides.
func (e *env) decide(t *testing.T, pool string, cmd workerpool.Command) {
	t.Helper()
	ctx := context.Background()
	stored, err := e.store.Load(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var state workerpool.State
	for _, se := range stored {
		decoded, err := e.store.Registry().Decode(se)
		if err != nil {
			t.Fatal(err)
		}
		state.Apply(decoded.(workerpool.Event))
	}
	events, err := workerpool.Decide(state, cmd)
	if err != nil {
		t.Fatalf("%T on %s: %v", cmd, pool, err)
	}
	appended := make([]any, len(events))
	for i, ev := range events {
		appended[i] = ev
	}
	if _, err := e.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: pool}, int64(len(stored)), appended...); err != nil {
		t.Fatal(err)
	}
}

// createPool creates pool and returns its secret.
func (e *env) createPool(t *testing.T, pool string) string {
	t.Helper()
	return testenv.CreatePool(t, e.store, pool, actor)
}

// resetPool gives pool a new certificate and secret, and returns the secret.
func (e *env) resetPool(t *testing.T, pool string) string {
	t.Helper()
	secret, hash, err := keyring.NewPoolSecret()
	if err != nil {
		t.Fatal(err)
	}
	e.decide(t, pool, workerpool.Reset{Certificate: testenv.PoolCertificate(t, pool), SecretHash: hash, Actor: actor, At: time.Now()})
	return secret
}

// service connects as Gantry's services.
func (e *env) service(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := e.bus.Connect("test-service")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// launcher is a pool launcher's connection and the asynchronous errors the server sent it.
type launcher struct {
	*nats.Conn
	errs *asyncErrors
}

// connectLauncher connects as a launcher of pool with secret, as a launcher does
// (bus.PoolCredentials); opts come last and so override the test's defaults.
func (e *env) connectLauncher(pool, secret string, opts ...nats.Option) (*launcher, error) {
	errs := &asyncErrors{}
	all := append([]nats.Option{
		bus.PoolCredentials(pool, secret), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(errs.record), nats.PermissionErrOnSubscribe(true),
	}, opts...)
	nc, err := nats.Connect(e.bus.URL(), all...)
	if err != nil {
		return nil, err
	}
	return &launcher{Conn: nc, errs: errs}, nil
}

func (e *env) mustConnectLauncher(t *testing.T, pool, secret string, opts ...nats.Option) *launcher {
	t.Helper()
	l, err := e.connectLauncher(pool, secret, opts...)
	if err != nil {
		t.Fatalf("connect as a launcher of %s: %v", pool, err)
	}
	t.Cleanup(l.Close)
	return l
}

// asyncErrors collects the errors a connection's error handler receives.
type asyncErrors struct {
	mu   sync.Mutex
	errs []error
}

func (a *asyncErrors) record(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
}

func (a *asyncErrors) find(substring string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, err := range a.errs {
		if strings.Contains(err.Error(), substring) {
			return true
		}
	}
	return false
}

// waitDeniedPublish waits until the server reported a publish permission violation on a
// subject starting with prefix.
func (l *launcher) waitDeniedPublish(t *testing.T, prefix string) {
	t.Helper()
	await.Until(t, 10*time.Second, fmt.Sprintf("a publish permission violation on %s", prefix), func() bool {
		return l.errs.find(`Permissions Violation for Publish to "` + prefix)
	})
}

// waitDeniedSubscribe waits until the server reported a subscription permission violation on
// subject.
func (l *launcher) waitDeniedSubscribe(t *testing.T, subject string) {
	t.Helper()
	await.Until(t, 10*time.Second, fmt.Sprintf("a subscription permission violation on %s", subject), func() bool {
		return l.errs.find(`Permissions Violation for Subscription to "` + subject + `"`)
	})
}

// subscribe subscribes nc to subject and makes sure the server has the subscription.
func subscribe(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// publish publishes and flushes, so that the server has the message when it returns.
func publish(t *testing.T, nc *nats.Conn, subject, data string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// next returns sub's next message, failing the test after 5s.
func next(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("next message on %s: %v", sub.Subject, err)
	}
	return msg
}
