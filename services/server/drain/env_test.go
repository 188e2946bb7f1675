package drain_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/stack"
	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/drain"
	"github.com/gantryhq/gantry/services/server/vcs"
	"github.com/gantryhq/gantry/services/server/webhook"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }

const secret = "s3cret"

var user = commands.Caller{Actor: "user:test", Role: apikey.RoleAdmin}

// env is the command layer, the webhook endpoint and the drain on real
// infrastructure: a fresh database, an embedded NATS server, the relay,
// the projector and its waiter.
type env struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	nats    *testenv.NATSServer
	cmds    *commands.Service
	queries *projections.Queries
	hooks   *httptest.Server
}

func newEnv(t *testing.T) *env { return newEnvB(t) }

// newEnvB is newEnv for tests and benchmarks.
func newEnvB(t testing.TB) *env {
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
	ns := testenv.NATS(t)
	nc := ns.Connect(t, "drain-test")
	relay, err := eventstore.NewRelay(pool, nc, eventstore.RelayConfig{PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	proj, err := projections.NewProjector(projections.Config{Pool: pool, Store: store, NATS: nc, CatchUpInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waiter := projections.NewWaiter(pool, nil)
	background(t, relay.Run, proj.Run, waiter.Run)

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
	cmds, err := commands.New(commands.Config{Aggregates: testenv.Aggregates(t, store), Waiter: waiter, Secrets: keeper,
		Pools: commands.CAPools{CA: ca}, ServerURL: "http://gantry.test:1983", NATSURL: ns.URL()})
	if err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(http.StripPrefix("", webhook.New(cmds, 64<<10, nil)))
	t.Cleanup(hooks.Close)
	return &env{pool: pool, store: store, nats: ns, cmds: cmds, queries: projections.NewQueries(pool), hooks: hooks}
}

// background runs each loop until the test ends.
func background(t testing.TB, runs ...func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// startDrain runs a drain with its own NATS connections until the test
// ends; cmds may wrap the env's command layer.
func (e *env) startDrain(t testing.TB, name string, cmds drain.Commands, statuses drain.StatusReporter) {
	t.Helper()
	if cmds == nil {
		cmds = e.cmds
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	d, err := drain.New(drain.Config{
		Connect:  func() (*nats.Conn, error) { return e.nats.Bus().Connect(name) },
		Registry: reg, Commands: cmds, Stacks: e.queries, Statuses: statuses,
		RetryInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	background(t, d.Run)
}

// integration adds a GitHub (or GitLab) integration named name.
func (e *env) integration(t testing.TB, provider domainvcs.Provider, name string) string {
	t.Helper()
	id, err := e.cmds.AddVCSIntegration(context.Background(), user, commands.VCSIntegration{
		Name: name, Provider: provider, WebhookSecret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// stack creates a stack of repo and branch tied to integration.
func (e *env) stack(t testing.TB, name, repo, branch, root, integration string) string {
	t.Helper()
	id, err := e.cmds.CreateStack(context.Background(), user, stack.Settings{Name: name, RepositoryURL: repo, Branch: branch,
		ProjectRoot: root, VCSIntegrationID: integration}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// post sends a delivery to the integration's endpoint, signed with sign
// ("" sends no signature), and returns the status code and the answer.
func (e *env) post(t testing.TB, provider domainvcs.Provider, name, event, deliveryID string, body []byte, sign string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.hooks.URL+"/webhooks/"+string(provider)+"/"+name, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if provider == domainvcs.GitHub {
		req.Header.Set(vcs.HeaderGitHubEvent, event)
		req.Header.Set(vcs.HeaderGitHubDelivery, deliveryID)
		if sign != "" {
			req.Header.Set(vcs.HeaderGitHubSignature, vcs.SignGitHub([]byte(sign), body))
		}
	} else {
		req.Header.Set(vcs.HeaderGitLabEvent, event)
		req.Header.Set(vcs.HeaderGitLabEventUUID, deliveryID)
		if sign != "" {
			req.Header.Set(vcs.HeaderGitLabToken, sign)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

// count returns the number of stored events of a type.
func (e *env) count(t testing.TB, eventType string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE event_type = $1", eventType).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
