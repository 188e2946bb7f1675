package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/testenv"
)

// e2eTimeout bounds each end-to-end step that waits for the server.
const e2eTimeout = 30 * time.Second

// testServer is runServer started the way `gantry dev` starts it, on a
// fresh database of the shared test cluster and an embedded NATS server.
type testServer struct {
	url       string
	dbURL     string
	natsURL   string
	bus       *bus.Bus
	configDir string // holds credentials.json with the admin API key
	blobURL   string // the server's bucket
	pool      *pgxpool.Pool
	store     *eventstore.Store
	keys      *serverKeys
	// probesURL is the instrumentation listener's base URL ("" when the
	// test turned it off).
	probesURL string
	// secretsURL, rsaKey and signing are what a replica of the server needs too.
	secretsURL string
	rsaKey     string
	signing    *auth.KeySet
	// lines are the start-up lines runServer reported.
	lines []component

	mu      sync.Mutex
	apiKeys map[string]string // by name, the keys apiKey made
}

// startServer starts the server on an embedded NATS; opts change its
// configuration first.
func startServer(t testing.TB, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS and the server")
	}
	return startServerOn(t, testenv.NATS(t).Bus(), opts...)
}

// startServerOn starts the server on the bus b, with a fresh database,
// secrets key and signing key.
func startServerOn(t testing.TB, b *bus.Bus, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	return startServerAt(t, b, testenv.Postgres(t), opts...)
}

// startServerAt starts the server on the bus b and the database at dbURL,
// with a fresh secrets key and signing key.
func startServerAt(t testing.TB, b *bus.Bus, dbURL string, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	signingPEM, err := keyring.DevSigningKeyPEM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	signing, err := auth.ParseKeySet(signingPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	blobURL, err := objstore.FileURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return launchServer(t, b, dbURL, "base64key://"+base64.URLEncoding.EncodeToString(key), signing, blobURL, opts...)
}

// replica starts another server process on s's database, NATS, bucket
// and keys, as an operator scales `gantry server` out: it has no
// credentials file and makes no admin key.
func (s *testServer) replica(t testing.TB, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	return launchServer(t, s.bus, s.dbURL, s.secretsURL, s.signing, s.blobURL,
		append([]func(*serverConfig){func(c *serverConfig) { c.adminCredentials = "" }}, opts...)...)
}

// launchServer runs runServer on the database at dbURL and the bus b until
// the test ends, and returns once it is ready.
func launchServer(t testing.TB, b *bus.Bus, dbURL, secretsURL string, signing *auth.KeySet, blobURL string, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	return spawnServer(t, b, dbURL, secretsURL, signing, blobURL, opts...).wait(t)
}

// spawningServer is a server started but maybe not ready yet, so that a
// test can start several at once.
type spawningServer struct {
	srv   *testServer
	ready chan []component
	done  chan error
}

// spawnServer starts runServer as launchServer does, without waiting.
func spawnServer(t testing.TB, b *bus.Bus, dbURL, secretsURL string, signing *auth.KeySet, blobURL string, opts ...func(*serverConfig)) *spawningServer {
	t.Helper()
	ctx := context.Background()
	pool, err := eventstore.OpenPool(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	configDir := t.TempDir()
	listen := freeAddr(t)

	runCtx, cancel := context.WithCancel(ctx)
	sp := &spawningServer{ready: make(chan []component, 1), done: make(chan error, 1)}
	cfg := serverConfig{
		listen: listen, secretsURL: secretsURL, blobURL: blobURL, signingKeys: signing, adminCredentials: filepath.Join(configDir, "credentials.json"),
		instrumentationListen: "127.0.0.1:0",
		log:                   slog.New(slog.NewJSONHandler(&testWriter{t: t, prefix: "server: "}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ready:                 func(lines []component) { sp.ready <- lines },
	}
	for _, o := range opts {
		o(&cfg)
	}
	go func() { sp.done <- runServer(runCtx, pool, b, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-sp.done; err != nil {
			t.Errorf("runServer: %v", err)
		}
		httpClient.CloseIdleConnections()
		pool.Close()
	})
	sp.srv = &testServer{url: "http://" + listen, dbURL: dbURL, natsURL: b.URL(), bus: b, configDir: configDir, blobURL: cfg.blobURL, pool: pool,
		secretsURL: cfg.secretsURL, rsaKey: cfg.rsaKey, signing: cfg.signingKeys, apiKeys: map[string]string{}}
	return sp
}

// wait returns the server once it is ready, failing the test if it ends
// first or takes too long.
func (sp *spawningServer) wait(t testing.TB) *testServer {
	t.Helper()
	select {
	case sp.srv.lines = <-sp.ready:
	case err := <-sp.done:
		sp.done <- err // for the clean-up
		t.Fatalf("runServer ended before it was ready: %v", err)
	case <-time.After(e2eTimeout):
		t.Fatal("the server was not ready in time")
	}
	// The schema is migrated now: the test's own store and keys can open.
	s := sp.srv
	s.probesURL, _, _ = strings.Cut(s.line("probes"), " ")
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	s.store = eventstore.New(s.pool, reg)
	t.Cleanup(s.store.Close)
	if s.keys, err = openKeys(context.Background(), s.pool, s.secretsURL, s.signing, keyring.WithRSAPrivateKey(s.rsaKey)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.keys.close() })
	return s
}

// objects opens the server's bucket with its keeper, as the server stores
// state files and logs in it.
func (s *testServer) objects(t testing.TB) *objstore.Store {
	t.Helper()
	return testenv.ObjectStore(t, s.blobURL, s.keys.keeper)
}

// line returns the start-up line of the component name, "" if none.
func (s *testServer) line(name string) string {
	for _, c := range s.lines {
		if c.name == name {
			return c.where
		}
	}
	return ""
}

// apiKey returns the API key named name with role, created through the
// API by the admin on first use.
func (s *testServer) apiKey(t testing.TB, name string, role apikey.Role) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if key, ok := s.apiKeys[name]; ok {
		return key
	}
	resp, err := s.as(s.adminToken(t)).apikeys.CreateApiKey(testCtx(t), connect.NewRequest(&gantryv1.CreateApiKeyRequest{Name: name, Role: protoRoles[role]}))
	if err != nil {
		t.Fatal(err)
	}
	s.apiKeys[name] = resp.Msg.GetKey()
	return resp.Msg.GetKey()
}

// token returns a session token of the API key named name with role
// (created on first use); callers using it are recorded as "user:<name>".
func (s *testServer) token(t testing.TB, name string, role apikey.Role) string {
	t.Helper()
	return s.session(t, s.apiKey(t, name, role))
}

// session opens a session with key and returns its token.
func (s *testServer) session(t testing.TB, key string) string {
	t.Helper()
	resp, err := s.as("").sessions.CreateSession(testCtx(t), connect.NewRequest(&gantryv1.CreateSessionRequest{ApiKey: key}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.GetToken()
}

// adminKey is the API key `gantry dev` wrote to the credentials file.
func (s *testServer) adminKey(t testing.TB) string {
	t.Helper()
	c, err := auth.LoadCredentials(filepath.Join(s.configDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Token
}

// adminToken is a session token of the admin key `gantry dev` wrote to
// the credentials file.
func (s *testServer) adminToken(t testing.TB) string {
	t.Helper()
	return s.session(t, s.adminKey(t))
}

// clients are Connect clients of every service, authenticated as one user.
type clients struct {
	stacks   gantryv1connect.StackServiceClient
	runs     gantryv1connect.RunServiceClient
	pools    gantryv1connect.WorkerPoolServiceClient
	events   gantryv1connect.EventServiceClient
	state    gantryv1connect.StateServiceClient
	apikeys  gantryv1connect.ApiKeyServiceClient
	sessions gantryv1connect.SessionServiceClient
}

// as returns clients that send token (none when empty), as the CLI does:
// a session token as it is, an API key exchanged for one.
func (s *testServer) as(token string) clients {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(newBearer(token, s.url)))
	}
	return clients{
		stacks:   gantryv1connect.NewStackServiceClient(http.DefaultClient, s.url, opts...),
		runs:     gantryv1connect.NewRunServiceClient(http.DefaultClient, s.url, opts...),
		pools:    gantryv1connect.NewWorkerPoolServiceClient(http.DefaultClient, s.url, opts...),
		events:   gantryv1connect.NewEventServiceClient(http.DefaultClient, s.url, opts...),
		state:    gantryv1connect.NewStateServiceClient(http.DefaultClient, s.url, opts...),
		apikeys:  gantryv1connect.NewApiKeyServiceClient(http.DefaultClient, s.url, opts...),
		sessions: gantryv1connect.NewSessionServiceClient(http.DefaultClient, s.url, opts...),
	}
}

// cli runs the gantry command line as the admin whose token `gantry dev`
// stored, finding server and token in the credentials file as a user's
// shell would.
func (s *testServer) cli(t testing.TB, args ...string) (stdout string, err error) {
	t.Helper()
	return s.cliEnv(t, map[string]string{auth.ConfigDirEnv: s.configDir}, args...)
}

// cliAs runs the command line with a token in GANTRY_TOKEN.
func (s *testServer) cliAs(t testing.TB, token string, args ...string) (stdout string, err error) {
	t.Helper()
	return s.cliEnv(t, map[string]string{"GANTRY_SERVER": s.url, "GANTRY_TOKEN": token}, args...)
}

func (s *testServer) cliEnv(t testing.TB, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, env(vars), &stdout, &stderr); code != 0 {
		return stdout.String(), &cliError{args: args, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type cliError struct {
	args   []string
	stderr string
}

func (e *cliError) Error() string { return "gantry " + strings.Join(e.args, " ") + ": " + e.stderr }

// mustCLI is cli that fails the test on a non-zero exit.
func (s *testServer) mustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.cli(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventCount is the number of events in the store.
func (s *testServer) eventCount(t testing.TB) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventTypesAfter says how many events of each type were appended after
// the first skip ones, per iteration of n: "RunQueued 1.0, …", most first.
func (s *testServer) eventTypesAfter(t testing.TB, skip, n int) string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(),
		"SELECT event_type, count(*) FROM (SELECT event_type FROM events ORDER BY position OFFSET $1) e GROUP BY 1 ORDER BY 2 DESC, 1", skip)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for rows.Next() {
		var typ string
		var count int
		if err := rows.Scan(&typ, &count); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s %.1f", typ, float64(count)/float64(n)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(parts, ", ")
}

// gitRepo makes a Git repository with one commit on main and returns its
// file:// URL and the commit id.
func gitRepo(t testing.TB) (url, commit string) {
	t.Helper()
	r := newTestRepo(t, "terraform {}\n")
	return r.url(), r.head()
}

// testRepo is a local Git repository a test commits to.
type testRepo struct {
	t   testing.TB
	dir string
}

// newTestRepo makes a repository on branch main whose first commit holds
// mainTF as main.tf.
func newTestRepo(t testing.TB, mainTF string) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(r.dir, "main.tf"), []byte(mainTF), 0o644); err != nil {
		t.Fatal(err)
	}
	r.git("add", "main.tf")
	r.git("commit", "-q", "-m", "first")
	return r
}

// git runs git in the repository, with no user or system configuration,
// and returns its trimmed output.
func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// url is the repository's file:// URL.
func (r *testRepo) url() string { return "file://" + r.dir }

// head is the commit id of the branch's head.
func (r *testRepo) head() string { return r.git("rev-parse", "HEAD") }

// ctx returns a context bounded by e2eTimeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	t.Cleanup(cancel)
	return ctx
}

// regexpMatch reports whether pattern matches s.
func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
