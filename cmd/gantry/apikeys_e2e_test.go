package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// createdKey is what `gantry -o json apikey create` prints.
type createdKey struct {
	APIKey struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Role      string `json:"role"`
		CreatedBy string `json:"created_by"`
	} `json:"api_key"`
	Key string `json:"key"`
}

// cliCreateKey creates a key with the admin's CLI and returns it.
func cliCreateKey(t *testing.T, srv *testServer, name, role string) createdKey {
	t.Helper()
	var k createdKey
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "apikey", "create", name, "--role", role)), &k); err != nil {
		t.Fatal(err)
	}
	return k
}

// storedCount counts the stored events whose payload or metadata holds s.
func storedCount(t *testing.T, srv *testServer, s string) int {
	t.Helper()
	var n int
	if err := srv.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%' OR metadata::text LIKE '%' || $1 || '%'`, s).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAPIKeysThroughTheCLI(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "keyed", "--repo", repo)

	// Created by the admin; the key is printed once and stored only hashed.
	table := srv.mustCLI(t, "apikey", "create", "ci-bot", "--role", "writer")
	if !regexpMatch(`(?m)^name\s+ci-bot$`, table) || !regexpMatch(`(?m)^role\s+writer$`, table) || !regexpMatch(`(?m)^created\s+\S+ by user:admin$`, table) {
		t.Errorf("apikey create:\n%s", table)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	key := lines[len(lines)-1]
	keyID, secret, ok := apikey.ParseKey(key)
	if !ok {
		t.Fatalf("apikey create printed no key:\n%s", table)
	}
	if n := storedCount(t, srv, secret); n != 0 {
		t.Errorf("the key's secret is stored in %d events", n)
	}
	auditor := cliCreateKey(t, srv, "auditor", "reader")
	if auditor.APIKey.Role != "ROLE_READER" || auditor.APIKey.CreatedBy != "user:admin" || !apikey.LooksLikeKey(auditor.Key) {
		t.Errorf("apikey create -o json: %+v", auditor.APIKey)
	}

	list := srv.mustCLI(t, "apikey", "list")
	for _, want := range []string{`(?m)^NAME\s+ROLE\s+ID\s+CREATED\s+CREATED BY$`, `(?m)^admin\s+admin\s+ak_\S+\s+\S+\s+system:dev$`,
		`(?m)^auditor\s+reader\s+` + auditor.APIKey.ID + `\s`, `(?m)^ci-bot\s+writer\s+` + keyID + `\s+\S+\s+user:admin$`} {
		if !regexpMatch(want, list) {
			t.Errorf("apikey list does not match %s:\n%s", want, list)
		}
	}
	for _, out := range []string{list, srv.mustCLI(t, "-o", "json", "apikey", "list"), srv.mustCLI(t, "events", "--from", "1")} {
		if strings.Contains(out, secret) || strings.Contains(out, auditor.Key) {
			t.Errorf("the CLI shows a key's secret:\n%s", out)
		}
	}

	// Each role may do what it may, and is told which role it lacks.
	asCI := func(args ...string) (string, error) { return srv.cliAs(t, key, args...) }
	asAuditor := func(args ...string) (string, error) { return srv.cliAs(t, auditor.Key, args...) }
	if out, err := asAuditor("stack", "show", "keyed"); err != nil || !strings.Contains(out, "keyed") {
		t.Errorf("reader showing a stack: %v\n%s", err, out)
	}
	if _, err := asAuditor("events", "--from", "1"); err != nil {
		t.Errorf("reader reading the audit stream: %v", err)
	}
	_, err := asAuditor("run", "trigger", "keyed")
	wantCLIError(t, err, "permission_denied", `RunService/TriggerRun needs role writer (writer and administrator keys); API key "auditor" has role reader`)
	_, err = asAuditor("stack", "env", "set", "keyed", "TF_LOG", "debug")
	wantCLIError(t, err, "permission_denied", "needs role writer")
	out, err := asCI("-o", "json", "run", "trigger", "keyed")
	if err != nil {
		t.Fatalf("writer triggering a run: %v", err)
	}
	var r struct {
		ID          string `json:"id"`
		TriggeredBy string `json:"triggered_by"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.TriggeredBy != "user:ci-bot" {
		t.Errorf("run triggered by %q (%v), want user:ci-bot", r.TriggeredBy, err)
	}
	if _, err := asCI("run", "cancel", r.ID); err != nil {
		t.Errorf("writer cancelling a run: %v", err)
	}
	_, err = asCI("stack", "create", "other", "--repo", repo)
	wantCLIError(t, err, "permission_denied", "StackService/CreateStack needs role admin (administrator keys only)")
	_, err = asCI("apikey", "list")
	wantCLIError(t, err, "permission_denied", "ApiKeyService/ListApiKeys needs role admin")
	_, err = asCI("apikey", "create", "escalate", "--role", "admin")
	wantCLIError(t, err, "permission_denied", "needs role admin")
	_, err = asCI("pool", "cycle", "public")
	wantCLIError(t, err, "permission_denied", "needs role admin")

	// Bad input: a clear error naming the field, nothing changed.
	before := srv.eventCount(t)
	_, err = srv.cli(t, "apikey", "create", "bad name", "--role", "writer")
	wantCLIError(t, err, "invalid_argument", `name: "bad name" may only contain letters, digits`)
	_, err = srv.cli(t, "apikey", "create", "CI-BOT", "--role", "reader")
	wantCLIError(t, err, "already_exists", `API key name "CI-BOT" is taken`)
	if _, err = srv.cli(t, "apikey", "create", "x", "--role", "root"); err == nil || !strings.Contains(err.Error(), `--role: role "root": use reader, writer or admin`) {
		t.Errorf("bad --role: %v", err)
	}
	if _, err = srv.cli(t, "apikey", "create", "x"); err == nil || !strings.Contains(err.Error(), `"role" not set`) {
		t.Errorf("no --role: %v", err)
	}
	_, err = srv.as(srv.adminToken(t)).apikeys.CreateApiKey(testCtx(t), connect.NewRequest(&gantryv1.CreateApiKeyRequest{Name: "x"}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "role: must be") {
		t.Errorf("CreateApiKey without a role: %v", err)
	}
	_, err = srv.cli(t, "apikey", "revoke", "nobody")
	wantCLIError(t, err, "not_found", `API key "nobody"`)
	_, err = srv.as(srv.adminToken(t)).sessions.CreateSession(testCtx(t), connect.NewRequest(&gantryv1.CreateSessionRequest{}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("CreateSession without a key: %v", err)
	}
	if after := srv.eventCount(t); after != before {
		t.Errorf("refused calls wrote %d events", after-before)
	}

	// Revoked: refused at once, with a message that says so; its name is free.
	revoked := srv.mustCLI(t, "apikey", "revoke", "ci-bot")
	if !regexpMatch(`(?m)^revoked\s+\S+ by user:admin$`, revoked) {
		t.Errorf("apikey revoke:\n%s", revoked)
	}
	_, err = asCI("stack", "list")
	wantCLIError(t, err, "unauthenticated", "invalid or revoked API key")
	if list := srv.mustCLI(t, "apikey", "list"); strings.Contains(list, "ci-bot") {
		t.Errorf("a revoked key is listed:\n%s", list)
	}
	again := cliCreateKey(t, srv, "ci-bot", "reader")
	if again.APIKey.ID == keyID {
		t.Error("the new key has the revoked key's id")
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(srv.mustCLI(t, "events", "--from", "1", "--type", "APIKeyRevoked")), "\n") {
		var e struct {
			StreamID string `json:"stream_id"`
			Metadata struct {
				Actor string `json:"actor"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e.StreamID+" by "+e.Metadata.Actor)
	}
	if len(events) != 1 || events[0] != keyID+" by user:admin" {
		t.Errorf("APIKeyRevoked events %v, want one for %s by user:admin", events, keyID)
	}
}

// A key revoked through one server is refused by the other replicas: each
// checks the key's aggregate on every request, so the refusal is at once;
// the bound is the 5 s.
func TestRevokedKeyIsRefusedByEveryReplica(t *testing.T) {
	srv := startServer(t)
	replica := srv.replica(t)
	key := srv.apiKey(t, "leaky", apikey.RoleReader)
	token := srv.session(t, key) // signed by the first server
	onReplica := replica.as(token)
	if _, err := onReplica.stacks.ListStacks(testCtx(t), connect.NewRequest(&gantryv1.ListStacksRequest{})); err != nil {
		t.Fatalf("the replica refuses the first server's session: %v", err)
	}
	if _, err := replica.as(replica.session(t, key)).stacks.ListStacks(testCtx(t), connect.NewRequest(&gantryv1.ListStacksRequest{})); err != nil {
		t.Fatalf("a session opened on the replica: %v", err)
	}

	srv.mustCLI(t, "apikey", "revoke", "leaky")
	revokedAt := time.Now()
	refused := func(c clients) bool {
		_, err := c.stacks.ListStacks(testCtx(t), connect.NewRequest(&gantryv1.ListStacksRequest{}))
		return connect.CodeOf(err) == connect.CodeUnauthenticated
	}
	await.Until(t, 5*time.Second, "every replica to refuse the revoked key's session", func() bool {
		return refused(onReplica) && refused(srv.as(token))
	})
	t.Logf("refused by both replicas %s after the revocation", time.Since(revokedAt).Round(time.Millisecond))
	for name, s := range map[string]*testServer{"first server": srv, "replica": replica} {
		_, err := s.as("").sessions.CreateSession(testCtx(t), connect.NewRequest(&gantryv1.CreateSessionRequest{ApiKey: key}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s opening a session with the revoked key: %v", name, err)
		}
	}
}

// syncBuffer is a log sink several goroutines write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// asServer makes a test server start as `gantry server` does: no
// credentials file, the first admin key written to keyFile (if set), its
// logs at debug level in logs.
func asServer(keyFile string, logs *syncBuffer) func(*serverConfig) {
	return func(c *serverConfig) {
		c.adminCredentials, c.adminKeyFile = "", keyFile
		c.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

func TestServerMakesTheFirstAdminKeyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS and servers")
	}
	b := testenv.NATS(t).Bus()
	// Two servers start at once on a fresh database, each told to write
	// the first admin key.
	first := startServerOn(t, b, asServer("", &syncBuffer{}))
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a", "admin.key"), filepath.Join(dir, "b", "admin.key")}
	logs := []*syncBuffer{{}, {}}
	// first made no key (no file given): nothing is live yet.
	if got := first.line("login"); !strings.Contains(got, "no admin API key exists: start a server with --admin-key-file") {
		t.Fatalf("login line without a key file: %q", got)
	}
	spawned := make([]*spawningServer, 2)
	for i := range spawned {
		spawned[i] = spawnServer(t, b, first.dbURL, first.secretsURL, first.signing, first.blobURL, asServer(paths[i], logs[i]))
	}
	servers := []*testServer{spawned[0].wait(t), spawned[1].wait(t)}

	var keys []string
	winner := -1
	for i, p := range paths {
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			// It lost the race on the key's name, or started after the
			// winner's key was made.
			if got := servers[i].line("login"); !strings.Contains(got, "another server created the admin key") && !strings.Contains(got, "admin API keys exist (1 live)") {
				t.Errorf("server %d wrote no key and says %q", i, got)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", p, info.Mode().Perm(), err)
		}
		key := strings.TrimSpace(string(raw))
		keys, winner = append(keys, key), i
		if got := servers[i].line("login"); !strings.Contains(got, "written to "+p) || strings.Contains(got, key) {
			t.Errorf("server %d's login line %q: want the file named and no key", i, got)
		}
	}
	if len(keys) != 1 || first.events(t, "APIKeyCreated") != 1 {
		t.Fatalf("%d key files written, %d keys created; want one of each", len(keys), first.events(t, "APIKeyCreated"))
	}
	_, secret, ok := apikey.ParseKey(keys[0])
	if !ok {
		t.Fatal("the key file holds no API key")
	}
	for i, l := range logs {
		if strings.Contains(l.String(), secret) {
			t.Errorf("server %d logged the key's secret", i)
		}
	}

	// The operator logs in with it: an admin recorded as user:admin.
	configDir := t.TempDir()
	vars := map[string]string{auth.ConfigDirEnv: configDir}
	out, err := servers[winner].cliEnv(t, vars, "login", "--server", servers[winner].url, "--key-file", paths[winner])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, secret) || !strings.Contains(out, "with API key admin") {
		t.Errorf("login printed %q", out)
	}
	var created createdKey
	if err := json.Unmarshal([]byte(first.mustCLIEnv(t, vars, "-o", "json", "apikey", "create", "deploy", "--role", "writer")), &created); err != nil {
		t.Fatal(err)
	}
	if created.APIKey.CreatedBy != "user:admin" {
		t.Errorf("a key created by the first admin: %+v", created.APIKey)
	}

	// A later start finds an admin key: nothing made, the file left alone.
	third := filepath.Join(dir, "c", "admin.key")
	later := first.replica(t, asServer(third, &syncBuffer{}))
	if _, err := os.Stat(third); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a start with an admin key wrote %s (%v)", third, err)
	}
	if got := later.line("login"); !strings.Contains(got, "admin API keys exist (1 live): none created") {
		t.Errorf("later start's login line %q", got)
	}
	if n := first.events(t, "APIKeyCreated"); n != 2 {
		t.Errorf("%d keys created, want the first and deploy", n)
	}

	// Every admin key revoked (deploy, a writer, remains): a start with the
	// flag makes a new one, the way back in.
	first.mustCLIEnv(t, vars, "apikey", "revoke", "admin")
	fourth := filepath.Join(dir, "d", "admin.key")
	recovered := first.replica(t, asServer(fourth, &syncBuffer{}))
	raw, err := os.ReadFile(fourth)
	if err != nil || !strings.Contains(recovered.line("login"), "written to "+fourth) {
		t.Fatalf("no new admin key after the last was revoked: %v, line %q", err, recovered.line("login"))
	}
	if _, err := recovered.as(strings.TrimSpace(string(raw))).apikeys.ListApiKeys(testCtx(t), connect.NewRequest(&gantryv1.ListApiKeysRequest{})); err != nil {
		t.Errorf("the new admin key: %v", err)
	}
}

// events counts the stored events of a type.
func (s *testServer) events(t testing.TB, eventType string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE event_type = $1", eventType).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// mustCLIEnv is cliEnv that fails the test on a non-zero exit.
func (s *testServer) mustCLIEnv(t testing.TB, vars map[string]string, args ...string) string {
	t.Helper()
	out, err := s.cliEnv(t, vars, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gantry dev keeps its admin key in the CLI's credentials file across
// restarts, and replaces what it cannot use.
func TestDevAdminKeyIsKeptOrReplaced(t *testing.T) {
	srv := startServer(t)
	path := filepath.Join(srv.configDir, "credentials.json")
	if got := srv.line("login"); got != "admin API key created in "+path+": the CLI uses it by default" {
		t.Errorf("login line %q", got)
	}
	first := srv.adminKey(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]string
	if err := json.Unmarshal(raw, &file); err != nil || len(file) != 2 || file["server"] != srv.url || file["token"] != first {
		t.Errorf("credentials file holds %v (%v)", file, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode %v, %v", info.Mode().Perm(), err)
	}
	if !apikey.LooksLikeKey(first) {
		t.Fatal("the credentials file holds no API key")
	}

	// A restart (here: another process on the same database and file, at
	// another address) keeps the key and writes the new address.
	restarted := srv.replica(t, func(c *serverConfig) { c.adminCredentials = path })
	if got := restarted.line("login"); !strings.HasPrefix(got, "admin API key kept in "+path) {
		t.Errorf("restart's login line %q", got)
	}
	if c, err := auth.LoadCredentials(path); err != nil || c.Token != first || c.Server != restarted.url {
		t.Errorf("after the restart: %s, same key %v, %v", c, c.Token == first, err)
	}
	if entries, err := os.ReadDir(srv.configDir); err != nil || len(entries) != 1 {
		t.Errorf("config dir holds %v (%v), want only the credentials file", entries, err)
	}

	// What it cannot use, it replaces with a new admin key.
	stranger := startServer(t).adminKey(t)
	reader := srv.apiKey(t, "viewer", apikey.RoleReader)
	oldAdmin := srv.apiKey(t, "old-admin", apikey.RoleAdmin)
	srv.mustCLI(t, "apikey", "revoke", "old-admin")
	cases := map[string]string{
		"garbage":                 "this is not JSON",
		"no token":                `{"server": "http://x"}`,
		"another server's key":    `{"server": "http://x", "token": "` + stranger + `"}`,
		"a reader's key":          `{"server": "http://x", "token": "` + reader + `"}`,
		"a revoked admin key":     `{"server": "http://x", "token": "` + oldAdmin + `"}`,
		"a session token, no key": `{"server": "http://x", "token": "` + srv.adminToken(t) + `"}`,
	}
	seen := map[string]bool{first: true}
	for name, content := range cases {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s := srv.replica(t, func(c *serverConfig) { c.adminCredentials = path })
		if got := s.line("login"); !strings.HasPrefix(got, "admin API key created in "+path) {
			t.Errorf("%s: login line %q", name, got)
		}
		c, err := auth.LoadCredentials(path)
		if err != nil || seen[c.Token] || c.Server != s.url {
			t.Errorf("%s: file not rewritten with a new key for %s (%v)", name, s.url, err)
			continue
		}
		seen[c.Token] = true
		if _, err := s.as(c.Token).apikeys.ListApiKeys(testCtx(t), connect.NewRequest(&gantryv1.ListApiKeysRequest{})); err != nil {
			t.Errorf("%s: the new key is no admin's: %v", name, err)
		}
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: rewritten file mode %v, %v", name, info.Mode().Perm(), err)
		}
	}
}

// A first admin key that cannot be written is revoked: no key stays live
// that nobody holds, and the server does not start.
func TestUnwritableAdminKeyFileRevokesTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS and servers")
	}
	b := testenv.NATS(t).Bus()
	srv := startServerOn(t, b, asServer("", &syncBuffer{}))
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	sp := spawnServer(t, b, srv.dbURL, srv.secretsURL, srv.signing, srv.blobURL, asServer(filepath.Join(notADir, "admin.key"), logs))
	var err error
	select {
	case err = <-sp.done:
		sp.done <- nil // the clean-up expects the server's end
	case <-sp.ready:
		t.Fatal("the server started without writing its admin key")
	case <-time.After(e2eTimeout):
		t.Fatal("the server neither failed nor started")
	}
	if err == nil || !strings.Contains(err.Error(), "--admin-key-file") || !strings.Contains(err.Error(), "the key was revoked") {
		t.Fatalf("runServer: %v; want the key file's error and the revocation", err)
	}
	if created, revoked := srv.events(t, "APIKeyCreated"), srv.events(t, "APIKeyRevoked"); created != 1 || revoked != 1 {
		t.Errorf("%d keys created, %d revoked; want the one key, revoked", created, revoked)
	}
}

// The curl recipe of docs/api.md: a session over plain JSON, then a call
// with it.
func TestSessionOverPlainJSON(t *testing.T) {
	srv := startServer(t)
	post := func(procedure, authorization, body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, srv.url+procedure, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, out
	}
	code, session := post("/gantry.v1.SessionService/CreateSession", "", `{"api_key": "`+srv.adminKey(t)+`"}`)
	token, _ := session["token"].(string)
	if code != http.StatusOK || token == "" || session["expiresAt"] == nil {
		t.Fatalf("CreateSession: %d %v", code, session)
	}
	if code, out := post("/gantry.v1.StackService/ListStacks", "Bearer "+token, `{}`); code != http.StatusOK {
		t.Errorf("ListStacks with the session: %d %v", code, out)
	}
	if code, out := post("/gantry.v1.StackService/ListStacks", "Bearer "+srv.adminKey(t), `{}`); code != http.StatusUnauthorized || out["code"] != "unauthenticated" {
		t.Errorf("ListStacks with the API key itself: %d %v, want unauthenticated", code, out)
	}
	if code, out := post("/gantry.v1.SessionService/CreateSession", "", `{"api_key": "ak_x_y"}`); code != http.StatusUnauthorized || out["message"] != "invalid or revoked API key" {
		t.Errorf("CreateSession with a bad key: %d %v", code, out)
	}
}
