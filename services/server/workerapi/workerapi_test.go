package workerapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/workerapi"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// upload writes data through a workspace writer in small pieces, as an encrypting stream does.
func upload(ctx context.Context, store executor.WorkspaceStore, runID string, data []byte) error {
	w, err := store.Create(ctx, runID)
	if err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(32<<10, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			// The answer that ended the upload is Close's error.
			if cerr := w.Close(); cerr != nil {
				return cerr
			}
			return err
		}
		data = data[n:]
	}
	return w.Close()
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	var se *workerclient.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a status answer", err)
	}
	return se.Code
}

func TestRoundTrip(t *testing.T) {
	roundTrip(t, newEnv(t))
}

// A saved workspace and a phase log on an S3-compatible server (GANTRY_BLOB_URL=s3://...).
func TestRoundTripOnS3(t *testing.T) {
	roundTrip(t, newEnvAt(t, testenv.S3(t).NewBucket(t, "gantry-runs")))
}

// roundTrip uploads and downloads a workspace and stores a phase log: the workspace is stored
// as it came (sealed to the pool's key already), the log encrypted at rest.
func roundTrip(t *testing.T, e *env) {
	pool, secret := e.createPool()
	runID, _ := e.planningRun(pool)
	c := e.client(pool, secret)
	ctx := context.Background()

	workspace := randomBytes(t, 5<<20+123)
	if err := upload(ctx, c, runID, workspace); err != nil {
		t.Fatalf("upload: %v", err)
	}
	stored, err := e.bucket.ReadAll(ctx, executor.WorkspaceKey(runID))
	if err != nil {
		t.Fatalf("the bucket has no workspace: %v", err)
	}
	if !bytes.Equal(stored, workspace) {
		t.Fatalf("stored workspace has %d bytes, want the %d uploaded", len(stored), len(workspace))
	}
	r, err := c.Open(ctx, runID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, workspace) {
		t.Fatalf("downloaded %d bytes, differing from the %d uploaded", len(got), len(workspace))
	}

	log := []byte("Initializing the backend...\n\x1b[32mPlan: 1 to add\x1b[0m\n")
	if err := c.StorePhaseLog(ctx, runID, run.PhasePlanning, log); err != nil {
		t.Fatalf("StorePhaseLog: %v", err)
	}
	storedLog, err := e.objects.ReadEncrypted(ctx, executor.PhaseLogKey(runID, run.PhasePlanning))
	if err != nil || !bytes.Equal(storedLog, log) {
		t.Fatalf("stored log = %q, %v; want %q", storedLog, err, log)
	}
	if raw, err := e.bucket.ReadAll(ctx, executor.PhaseLogKey(runID, run.PhasePlanning)); err != nil || bytes.Contains(raw, []byte("Plan: 1 to add")) {
		t.Fatalf("the log in the bucket is not ciphertext: %q, %v", raw, err)
	}
	// A client made without an http.Client works the same.
	def := workerclient.New(e.srv.URL+"/", pool, secret, nil)
	defer def.CloseIdleConnections()
	if err := def.StorePhaseLog(ctx, runID, run.PhaseApplying, []byte("applied\n")); err != nil {
		t.Fatalf("StorePhaseLog with the default client: %v", err)
	}
}

func TestOpenWithoutWorkspace(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	runID, _ := e.planningRun(pool)
	_, err := e.client(pool, secret).Open(context.Background(), runID)
	if !errors.Is(err, workerclient.ErrNotFound) {
		t.Fatalf("Open of a run without a workspace = %v, want ErrNotFound", err)
	}
}

func TestWrongSecret(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	runID, _ := e.planningRun(pool)
	wrong := secret[:len(secret)-4] + "XXXX"
	err := e.client(pool, wrong).StorePhaseLog(context.Background(), runID, run.PhasePlanning, []byte("x"))
	if got := statusOf(t, err); got != http.StatusUnauthorized {
		t.Fatalf("status = %d (%v), want 401", got, err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("the error shows the secret: %v", err)
	}
	// An unknown pool is refused the same way, and the answer does not say which part was wrong.
	for _, creds := range [][2]string{{pool, wrong}, {"wp_nosuchpool", secret}, {"", ""}} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+protocol.WorkerAPIPrefix+"runs/"+runID+"/workspace", nil)
		if err != nil {
			t.Fatal(err)
		}
		if creds[0] != "" {
			req.SetBasicAuth(creds[0], creds[1])
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="gantry workers"` {
			t.Fatalf("%s: %d, WWW-Authenticate %q; want 401 with the realm", creds[0], resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if strings.TrimSpace(string(body)) != "pool id or secret not accepted" {
			t.Fatalf("%s: body %q says too much", creds[0], body)
		}
	}
	if ok, err := e.bucket.Exists(context.Background(), executor.PhaseLogKey(runID, run.PhasePlanning)); err != nil || ok {
		t.Fatalf("log exists = %v, %v after refused uploads", ok, err)
	}
}

func TestOtherPoolsRun(t *testing.T) {
	e := newEnv(t)
	pool, _ := e.createPool()
	other, otherSecret := e.createPool()
	runID, _ := e.planningRun(pool)
	c := e.client(other, otherSecret)
	ctx := context.Background()
	if got := statusOf(t, c.StorePhaseLog(ctx, runID, run.PhasePlanning, []byte("x"))); got != http.StatusForbidden {
		t.Fatalf("log of another pool's run: %d, want 403", got)
	}
	if got := statusOf(t, upload(ctx, c, runID, []byte("sealed"))); got != http.StatusForbidden {
		t.Fatalf("workspace of another pool's run: %d, want 403", got)
	}
	_, err := c.Open(ctx, runID)
	if got := statusOf(t, err); got != http.StatusForbidden {
		t.Fatalf("reading another pool's workspace: %d, want 403", got)
	}
	if ok, err := e.bucket.Exists(ctx, executor.WorkspaceKey(runID)); err != nil || ok {
		t.Fatalf("workspace exists = %v, %v after a refused upload", ok, err)
	}
}

func TestUnknownRun(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	err := e.client(pool, secret).StorePhaseLog(context.Background(), "run_nosuchrun", run.PhasePlanning, []byte("x"))
	if got := statusOf(t, err); got != http.StatusNotFound || !strings.Contains(err.Error(), "run_nosuchrun: not found") {
		t.Fatalf("unknown run: %v, want 404 naming it", err)
	}
}

func TestBadRequestPaths(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	runID, _ := e.planningRun(pool)
	for _, tc := range []struct {
		path, want string
	}{
		{"runs/" + runID + "/logs/COOKING", `phase: unknown phase "COOKING"`},
		{"runs/stk_notarun/logs/PLANNING", "run:"},
		{"runs/stk_notarun/workspace", "run:"},
	} {
		req, err := http.NewRequest(http.MethodPut, e.srv.URL+protocol.WorkerAPIPrefix+tc.path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(pool, secret)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Errorf("PUT %s: %d %q, want 400 containing %q", tc.path, resp.StatusCode, body, tc.want)
		}
	}
}

func TestPhaseLogTooLarge(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	runID, _ := e.planningRun(pool)
	err := e.client(pool, secret).StorePhaseLog(context.Background(), runID, run.PhaseApplying, make([]byte, workerapi.MaxPhaseLogSize+1))
	if got := statusOf(t, err); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized log: %v, want 413", err)
	}
	if ok, err := e.bucket.Exists(context.Background(), executor.PhaseLogKey(runID, run.PhaseApplying)); err != nil || ok {
		t.Fatalf("log exists = %v, %v after a refused upload", ok, err)
	}
}

func TestTerminalRunTakesNoUploads(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	runID, version := e.planningRun(pool)
	c := e.client(pool, secret)
	ctx := context.Background()
	if err := upload(ctx, c, runID, []byte("sealed workspace")); err != nil {
		t.Fatal(err)
	}
	e.append(eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, version,
		run.RunFailed{StackID: "stk_x", Note: "worker lost", At: time.Now(), Actor: "system:test"})

	err := c.StorePhaseLog(ctx, runID, run.PhasePlanning, []byte("late"))
	if got := statusOf(t, err); got != http.StatusConflict || !strings.Contains(err.Error(), "FAILED") {
		t.Fatalf("log of a FAILED run: %v, want 409 naming the state", err)
	}
	if got := statusOf(t, upload(ctx, c, runID, []byte("other"))); got != http.StatusConflict {
		t.Fatalf("workspace of a FAILED run: %d, want 409", got)
	}
	// Another pool still learns nothing beyond 403.
	other, otherSecret := e.createPool()
	if got := statusOf(t, e.client(other, otherSecret).StorePhaseLog(ctx, runID, run.PhasePlanning, []byte("x"))); got != http.StatusForbidden {
		t.Fatalf("another pool on a FAILED run: %d, want 403", got)
	}
	stored, err := e.bucket.ReadAll(ctx, executor.WorkspaceKey(runID))
	if err != nil || string(stored) != "sealed workspace" {
		t.Fatalf("workspace = %q, %v; the refused upload must not replace it", stored, err)
	}
}

func TestAbortedUploadLeavesNoObject(t *testing.T) {
	e := newEnv(t)
	pool, secret := e.createPool()
	runID, _ := e.planningRun(pool)
	c := e.client(pool, secret)

	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Create(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	// Enough that the server is receiving before the abort.
	if _, err := w.Write(randomBytes(t, 2<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel = %v, want context.Canceled", err)
	}
	e.waitHandled()
	if ok, err := e.bucket.Exists(context.Background(), executor.WorkspaceKey(runID)); err != nil || ok {
		t.Fatalf("workspace exists = %v, %v after an aborted upload", ok, err)
	}

	// A body cut short by the client: the server sees an unexpected end and stores nothing.
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, e.srv.URL+protocol.WorkerAPIPrefix+"runs/"+runID+"/workspace", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(pool, secret)
	part := randomBytes(t, 1<<20)
	go func() {
		_, _ = pw.Write(part)
		pw.CloseWithError(errors.New("launcher died"))
	}()
	if resp, err := e.srv.Client().Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("a cut body got an answer %s", resp.Status)
	}
	e.waitHandled()
	if ok, err := e.bucket.Exists(context.Background(), executor.WorkspaceKey(runID)); err != nil || ok {
		t.Fatalf("workspace exists = %v, %v after a cut body", ok, err)
	}
}
