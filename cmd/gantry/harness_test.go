package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/bus"
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
	configDir string // holds credentials.json with the admin token
	blobURL   string // the server's bucket
	pool      *pgxpool.Pool
	store     *eventstore.Store
	keys      *serverKeys
	// probesURL is the instrumentation listener's base URL ("" when the
	// test turned it off).
	probesURL string
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

// startServerOn starts the server on the bus b.
func startServerOn(t testing.TB, b *bus.Bus, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	return startServerAt(t, b, testenv.Postgres(t), opts...)
}

// startServerAt starts the server on the bus b and the database at dbURL.
func startServerAt(t testing.TB, b *bus.Bus, dbURL string, opts ...func(*serverConfig)) *testServer {
	t.Helper()
	ctx := context.Background()
	pool, err := eventstore.OpenPool(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	secretsURL := "base64key://" + base64.URLEncoding.EncodeToString(key)
	configDir := t.TempDir()
	blobURL, err := objstore.FileURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)

	runCtx, cancel := context.WithCancel(ctx)
	ready := make(chan []component, 1)
	done := make(chan error, 1)
	cfg := serverConfig{
		listen: listen, secretsURL: secretsURL, blobURL: blobURL, adminCredentials: filepath.Join(configDir, "credentials.json"),
		instrumentationListen: "127.0.0.1:0",
		log:                   slog.New(slog.NewJSONHandler(&testWriter{t: t, prefix: "server: "}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ready:                 func(lines []component) { ready <- lines },
	}
	for _, o := range opts {
		o(&cfg)
	}
	go func() { done <- runServer(runCtx, pool, b, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runServer: %v", err)
		}
		httpClient.CloseIdleConnections()
		pool.Close()
	})
	var probesURL string
	select {
	case lines := <-ready:
		for _, l := range lines {
			if l.name == "probes" {
				probesURL, _, _ = strings.Cut(l.where, " ")
			}
		}
	case err := <-done:
		t.Fatalf("runServer ended before it was ready: %v", err)
	case <-time.After(e2eTimeout):
		t.Fatal("the server was not ready in time")
	}

	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(pool, reg)
	t.Cleanup(store.Close)
	keys, err := openKeys(ctx, pool, secretsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keys.close() })
	return &testServer{url: "http://" + listen, dbURL: dbURL, natsURL: b.URL(), bus: b, configDir: configDir, blobURL: blobURL, pool: pool, store: store, keys: keys, probesURL: probesURL}
}

// token issues an API token for subject with role.
func (s *testServer) token(t testing.TB, subject, role string) string {
	t.Helper()
	tok, err := s.keys.issuer.Issue(context.Background(), subject, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// adminToken is the token `gantry dev` wrote to the credentials file.
func (s *testServer) adminToken(t testing.TB) string {
	t.Helper()
	c, err := auth.LoadCredentials(filepath.Join(s.configDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Token
}

// clients are Connect clients of every service, authenticated as one user.
type clients struct {
	stacks gantryv1connect.StackServiceClient
	runs   gantryv1connect.RunServiceClient
	pools  gantryv1connect.WorkerPoolServiceClient
	events gantryv1connect.EventServiceClient
}

// as returns clients that send token (none when empty).
func (s *testServer) as(token string) clients {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(bearerToken(token)))
	}
	return clients{
		stacks: gantryv1connect.NewStackServiceClient(http.DefaultClient, s.url, opts...),
		runs:   gantryv1connect.NewRunServiceClient(http.DefaultClient, s.url, opts...),
		pools:  gantryv1connect.NewWorkerPoolServiceClient(http.DefaultClient, s.url, opts...),
		events: gantryv1connect.NewEventServiceClient(http.DefaultClient, s.url, opts...),
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

// gitRepo makes a Git repository with one commit on main and returns its
// file:// URL and the commit id.
func gitRepo(t testing.TB) (url, commit string) {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("terraform {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "main.tf")
	git("commit", "-q", "-m", "first")
	return "file://" + dir, git("rev-parse", "HEAD")
}

// ctx returns a context bounded by e2eTimeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	t.Cleanup(cancel)
	return ctx
}

// regexpMatch reports whether pattern matches s.
func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
