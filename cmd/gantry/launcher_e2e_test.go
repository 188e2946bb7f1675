package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"gocloud.dev/blob"

	domainrun "github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// runEndTimeout bounds the wait for a run on real launchers and terraform.
const runEndTimeout = 90 * time.Second

// launcherPool is a private worker pool whose workers are `gantry launcher`
// processes started by the test.
type launcherPool struct {
	id, name string
	env      []string // GANTRY_TOKEN and GANTRY_POOL_PRIVATE_KEY
	procs    []*gantryProc
}

// startLauncherPool creates a private pool named name and starts n launcher
// processes of it with the extra environment env; it returns once all n
// workers are IDLE.
func startLauncherPool(t testing.TB, srv *testServer, name string, n int, env ...string) *launcherPool {
	t.Helper()
	poolID, token, key := createPoolCLI(t, srv, name)
	p := &launcherPool{id: poolID, name: name, env: launcherEnv(t, token, key)}
	p.start(t, srv, n, env...)
	return p
}

// launcherEnv is the environment a launcher of a pool starts with: an RSA
// key as PKCS #1, any other as PKCS #8 (what `openssl req -newkey` writes).
func launcherEnv(t testing.TB, token string, key crypto.Signer) []string {
	t.Helper()
	block := &pem.Block{Type: "PRIVATE KEY"}
	if k, ok := key.(*rsa.PrivateKey); ok {
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block.Bytes = der
	}
	return []string{"GANTRY_TOKEN=" + token, "GANTRY_POOL_PRIVATE_KEY=" + base64.StdEncoding.EncodeToString(pem.EncodeToMemory(block))}
}

// start starts n launcher processes of the pool with the extra environment
// env, and returns once the pool has n IDLE workers.
func (p *launcherPool) start(t testing.TB, srv *testServer, n int, env ...string) {
	t.Helper()
	for range n {
		p.procs = append(p.procs, startGantryEnv(t, append(append([]string{"GANTRY_LAUNCHER_WORK_DIR=" + t.TempDir()}, p.env...), env...), "launcher"))
	}
	await.Until(t, 30*time.Second, "the launchers' workers to be IDLE", func() bool {
		return strings.Count(srv.mustCLI(t, "pool", "workers", p.id), "IDLE") == n
	})
}

// demoRepo runs scripts/demo-repo, as the README does, and returns the
// repository's URL.
func demoRepo(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command("../../scripts/demo-repo", dir)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/demo-repo: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// getRun reads a run through the API.
func (c clients) getRun(t testing.TB, id string) *gantryv1.Run {
	t.Helper()
	res, err := c.runs.GetRun(testCtx(t), connect.NewRequest(&gantryv1.GetRunRequest{Run: id}))
	if err != nil {
		t.Fatalf("get run %s: %v", id, err)
	}
	return res.Msg.GetRun()
}

// waitRunState waits until the run is in one of states, failing the test
// if it ends in another terminal state.
func (c clients) waitRunState(t testing.TB, id string, states ...gantryv1.RunState) *gantryv1.Run {
	t.Helper()
	deadline := time.Now().Add(runEndTimeout)
	for {
		r := c.getRun(t, id)
		for _, s := range states {
			if r.GetState() == s {
				return r
			}
		}
		if terminalState(r.GetState()) || time.Now().After(deadline) {
			t.Fatalf("run %s is %s, want %v; history:\n%s", id, r.GetState(), states, historyText(r))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRunEnd waits for the run's end as `gantry run trigger --wait` does:
// it follows the run's events and, once one ends the run, reads the run as
// of that event. It fails the test if the run ends other than FINISHED.
func (c clients) waitRunEnd(t testing.TB, id string) *gantryv1.Run {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), runEndTimeout)
	defer cancel()
	at, err := followRunEvents(ctx, c.events, reg, id, waitOptions{from: domainrun.Queued}, newProgress(io.Discard, true, id), func() {})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.runs.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: id, MinCursor: at}))
	if err != nil {
		t.Fatalf("get run %s: %v", id, err)
	}
	if r := res.Msg.GetRun(); r.GetState() != gantryv1.RunState_RUN_STATE_FINISHED {
		t.Fatalf("run %s is %s, want FINISHED; history:\n%s", id, r.GetState(), historyText(r))
	}
	return res.Msg.GetRun()
}

func terminalState(s gantryv1.RunState) bool { return domainrun.Status(runStateName(s)).Terminal() }

func historyText(r *gantryv1.Run) string {
	var b strings.Builder
	for _, h := range r.GetHistory() {
		b.WriteString(runStateName(h.GetState()) + " " + h.GetTime().AsTime().Format(time.RFC3339Nano) + " " + h.GetActor() + " " + h.GetNote() + "\n")
	}
	return b.String()
}

// entered returns the history entry of the run's first entry into state.
func entered(r *gantryv1.Run, state gantryv1.RunState) (*gantryv1.RunStateChange, bool) {
	for _, h := range r.GetHistory() {
		if h.GetState() == state {
			return h, true
		}
	}
	return nil, false
}

// createStack creates a stack through the API.
func (c clients) createStack(t testing.TB, req *gantryv1.CreateStackRequest) string {
	t.Helper()
	res, err := c.stacks.CreateStack(testCtx(t), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("create stack %s: %v", req.GetName(), err)
	}
	return res.Msg.GetStack().GetId()
}

func (c clients) trigger(t testing.TB, stack string, typ gantryv1.RunType) string {
	t.Helper()
	res, err := c.runs.TriggerRun(testCtx(t), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: stack, Type: typ}))
	if err != nil {
		t.Fatalf("trigger a run of %s: %v", stack, err)
	}
	return res.Msg.GetRun().GetId()
}

// stateVersions counts the stack's state versions.
func (s *testServer) stateVersions(t testing.TB, stack string) int {
	t.Helper()
	out := srvLines(s.mustCLI(t, "state", "versions", stack))
	return len(out) - 1 // the header
}

func srvLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// storedLogs returns every stored object of the server's bucket under
// runs/<run>/logs, decrypted, by phase file name.
func (s *testServer) storedLogs(t testing.TB, runID string) map[string]string {
	t.Helper()
	objects := s.objects(t)
	out := map[string]string{}
	it := objects.Bucket().List(&blob.ListOptions{Prefix: "runs/" + runID + "/logs/"})
	for {
		obj, err := it.Next(testCtx(t))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("list the stored logs of %s: %v", runID, err)
		}
		data, err := objects.ReadEncrypted(testCtx(t), obj.Key)
		if err != nil {
			t.Fatalf("read the stored logs of %s: %v", runID, err)
		}
		out[path.Base(obj.Key)] = string(data)
	}
	return out
}

// The run lifecycle on real launcher processes and real terraform: the
// tests of issue 5 that share one pool of two workers.
func TestRunsOnLauncherProcesses(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "e2e", 2)
	c := srv.as(srv.adminToken(t))
	repo := demoRepo(t)
	newStack := func(name string, autodeploy bool, hooks *gantryv1.Hooks) string {
		return c.createStack(t, &gantryv1.CreateStackRequest{Name: name, RepositoryUrl: repo, WorkerPoolId: pool.id,
			Autodeploy: autodeploy, ManagedState: true, Hooks: hooks})
	}

	t.Run("autodeploy", func(t *testing.T) {
		stack := newStack("auto", true, nil)
		run := c.trigger(t, stack, gantryv1.RunType_RUN_TYPE_TRACKED)
		r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
		if _, ok := entered(r, gantryv1.RunState_RUN_STATE_APPLYING); !ok {
			t.Errorf("the run did not apply:\n%s", historyText(r))
		}
		if n := srv.stateVersions(t, "auto"); n != 1 {
			t.Errorf("%d state versions, want 1", n)
		}
	})

	t.Run("confirm applies on the other worker", func(t *testing.T) {
		stack := newStack("confirm", false, nil)
		run := c.trigger(t, stack, gantryv1.RunType_RUN_TYPE_TRACKED)
		r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_UNCONFIRMED)
		planned, _ := entered(r, gantryv1.RunState_RUN_STATE_PLANNING)
		workspace := filepath.Join(strings.TrimPrefix(srv.blobURL, "file://"), executor.WorkspaceKey(run))
		if _, err := os.Stat(workspace); err != nil {
			t.Fatalf("no saved workspace while UNCONFIRMED: %v", err)
		}
		// Only the other worker may take the apply.
		srv.mustCLI(t, "pool", "drain", pool.name, planned.GetActor())
		defer srv.mustCLI(t, "pool", "undrain", pool.name, planned.GetActor())
		srv.mustCLI(t, "run", "confirm", run)
		r = c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
		applied, _ := entered(r, gantryv1.RunState_RUN_STATE_APPLYING)
		if applied.GetActor() == planned.GetActor() || !strings.HasPrefix(applied.GetActor(), "wkr_") {
			t.Errorf("planned by %s, applied by %s: want another worker", planned.GetActor(), applied.GetActor())
		}
		if n := srv.stateVersions(t, "confirm"); n != 1 {
			t.Errorf("%d state versions, want 1", n)
		}
		await.Until(t, 10*time.Second, "the applied run's saved workspace to be deleted", func() bool {
			_, err := os.Stat(workspace)
			return errors.Is(err, fs.ErrNotExist)
		})
	})

	t.Run("discard", func(t *testing.T) {
		stack := newStack("discard", false, nil)
		run := c.trigger(t, stack, gantryv1.RunType_RUN_TYPE_TRACKED)
		c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_UNCONFIRMED)
		srv.mustCLI(t, "run", "discard", run)
		c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_DISCARDED)
		if n := srv.stateVersions(t, "discard"); n != 0 {
			t.Errorf("%d state versions after a discard, want 0", n)
		}
	})

	t.Run("proposed", func(t *testing.T) {
		stack := newStack("proposed", false, nil)
		run := c.trigger(t, stack, gantryv1.RunType_RUN_TYPE_PROPOSED)
		r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
		if _, ok := entered(r, gantryv1.RunState_RUN_STATE_APPLYING); ok {
			t.Errorf("a proposed run applied:\n%s", historyText(r))
		}
		if n := srv.stateVersions(t, "proposed"); n != 0 {
			t.Errorf("%d state versions after a proposed run, want 0", n)
		}
	})

	t.Run("task lists the state", func(t *testing.T) {
		newStack("task", true, nil)
		first := c.trigger(t, "task", gantryv1.RunType_RUN_TYPE_TRACKED)
		c.waitRunState(t, first, gantryv1.RunState_RUN_STATE_FINISHED)
		res, err := c.runs.TriggerTask(testCtx(t), connect.NewRequest(&gantryv1.TriggerTaskRequest{Stack: "task", Command: "terraform state list"}))
		if err != nil {
			t.Fatal(err)
		}
		task := res.Msg.GetRun().GetId()
		c.waitRunState(t, task, gantryv1.RunState_RUN_STATE_FINISHED)
		logs := srv.mustCLI(t, "run", "logs", task)
		for _, want := range []string{"terraform_data.greeting", "terraform_data.run"} {
			if !strings.Contains(logs, want) {
				t.Errorf("the task's log lacks %q:\n%s", want, logs)
			}
		}
	})

	t.Run("tracked runs of one stack run in order", func(t *testing.T) {
		newStack("fifo", true, nil)
		var runs []string
		for range 3 {
			runs = append(runs, c.trigger(t, "fifo", gantryv1.RunType_RUN_TYPE_TRACKED))
		}
		var prevEnd time.Time
		for i, id := range runs {
			r := c.waitRunState(t, id, gantryv1.RunState_RUN_STATE_FINISHED)
			started, _ := entered(r, gantryv1.RunState_RUN_STATE_PREPARING)
			ended, _ := entered(r, gantryv1.RunState_RUN_STATE_FINISHED)
			if started.GetTime().AsTime().Before(prevEnd) {
				t.Errorf("run %d started at %s, before run %d ended at %s", i+1, started.GetTime().AsTime(), i, prevEnd)
			}
			prevEnd = ended.GetTime().AsTime()
		}
	})

	t.Run("secrets never reach a log", func(t *testing.T) {
		const secret = "hunter2-e2e-secret-value"
		newStack("secret", true, nil)
		srv.mustCLI(t, "stack", "env", "set", "secret", "TF_VAR_greeting", secret, "--secret")
		run := c.trigger(t, "secret", gantryv1.RunType_RUN_TYPE_TRACKED)
		c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
		logs := srv.mustCLI(t, "run", "logs", run)
		if !strings.Contains(logs, "greeting") || !strings.Contains(logs, "***") {
			t.Errorf("the output line with the masked greeting is missing:\n%s", logs)
		}
		stored := srv.storedLogs(t, run)
		if len(stored) < 4 {
			t.Errorf("stored logs of %d phases: %v", len(stored), stored)
		}
		for phase, text := range stored {
			if strings.Contains(text, secret) {
				t.Errorf("the stored %s log shows the secret", phase)
			}
		}
		if strings.Contains(logs, secret) {
			t.Error("the streamed log shows the secret")
		}
	})

	t.Run("failing hook", func(t *testing.T) {
		newStack("hook", true, &gantryv1.Hooks{BeforePlan: []string{"echo hook-was-here; exit 3"}})
		run := c.trigger(t, "hook", gantryv1.RunType_RUN_TYPE_TRACKED)
		r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FAILED)
		failed, _ := entered(r, gantryv1.RunState_RUN_STATE_FAILED)
		if !strings.Contains(failed.GetNote(), "PLANNING") {
			t.Errorf("failure note %q does not name the phase", failed.GetNote())
		}
		if logs := srv.mustCLI(t, "run", "logs", run); !strings.Contains(logs, "hook-was-here") {
			t.Errorf("the hook's output is not in the log:\n%s", logs)
		}
	})
}

// A slow plan is stopped (STOPPED), and a run that prints nothing for longer
// than GANTRY_LAUNCHER_LOGS_TIMEOUT fails with a note saying so; the worker
// is BUSY meanwhile. The launcher's other settings show on the way: its
// metadata in the worker list, its whitelisted variable in the run (masked,
// as GANTRY_MASK_ENVS asks), the commands it runs (GANTRY_DEBUG) and the run
// log as JSON lines on its stdout.
func TestLauncherStopAndLogsTimeout(t *testing.T) {
	const launcherSecret = "launcher-secret-e2e"
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "slow", 1, "GANTRY_LAUNCHER_LOGS_TIMEOUT=4s", "GANTRY_METADATA_zone=e2e-zone",
		"GANTRY_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED=true", "GANTRY_DEBUG=true",
		"LAUNCHER_SECRET="+launcherSecret, "GANTRY_WHITELIST_ENVS=LAUNCHER_SECRET", "GANTRY_MASK_ENVS=LAUNCHER_SECRET")
	c := srv.as(srv.adminToken(t))
	repo := demoRepo(t)
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "slow", RepositoryUrl: repo, WorkerPoolId: pool.id, ManagedState: true,
		Hooks: &gantryv1.Hooks{BeforePlan: []string{`echo "planning slowly with $LAUNCHER_SECRET"; sleep 60`}}})

	run := c.trigger(t, "slow", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_PLANNING)
	if out := srv.mustCLI(t, "pool", "workers", "slow"); !strings.Contains(out, "BUSY") || !strings.Contains(out, "zone=e2e-zone") {
		t.Errorf("the worker is not BUSY with its metadata during the run:\n%s", out)
	}
	line := pool.procs[0].waitLine(t, 30*time.Second, "the hook's line on stdout", func(l string) bool {
		return strings.Contains(l, `"msg":"planning slowly`)
	})
	var logged struct {
		RunID string `json:"run_id"`
		Msg   string `json:"msg"`
		TS    string `json:"ts"`
	}
	if err := json.Unmarshal([]byte(line), &logged); err != nil || logged.RunID != run || logged.TS == "" || logged.Msg != "planning slowly with ***" {
		t.Errorf("stdout line %q (%v): want JSON with run_id, ts and the masked msg", line, err)
	}
	srv.mustCLI(t, "run", "stop", run)
	r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_STOPPED)
	if d := r.GetUpdatedAt().AsTime().Sub(r.GetCreatedAt().AsTime()); d > 30*time.Second {
		t.Errorf("the stop took until %s after the trigger", d)
	}
	logs := srv.mustCLI(t, "run", "logs", run)
	if strings.Contains(logs, launcherSecret) || !strings.Contains(logs, "+ terraform init") {
		t.Errorf("want the debug command lines and no launcher secret in the log:\n%s", logs)
	}

	run = c.trigger(t, "slow", gantryv1.RunType_RUN_TYPE_TRACKED)
	r = c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FAILED)
	failed, _ := entered(r, gantryv1.RunState_RUN_STATE_FAILED)
	if !strings.Contains(failed.GetNote(), "logs timeout") {
		t.Errorf("failure note %q does not name the logs timeout", failed.GetNote())
	}
	await.Until(t, 10*time.Second, "the worker to be IDLE again", func() bool {
		return strings.Contains(srv.mustCLI(t, "pool", "workers", "slow"), "IDLE")
	})
}

// A launcher started with another pool's key, or a token the server does
// not know, stops at once with a message naming the problem.
func TestLauncherRefusesBadCredentials(t *testing.T) {
	srv := startServer(t)
	a := startLauncherPool(t, srv, "pool-a", 0)
	b := startLauncherPool(t, srv, "pool-b", 0)
	// pool-a's token with pool-b's key.
	p := startGantryEnv(t, []string{a.env[0], b.env[1]}, "launcher")
	if err := p.exit(t, 20*time.Second); err == nil {
		t.Error("a launcher with another pool's key did not fail")
	}
	// pool-a's token after a reset.
	csr, _ := rsaCSR(t, 2048)
	csrFile := filepath.Join(t.TempDir(), "new.csr")
	if err := os.WriteFile(csrFile, []byte(csr), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.mustCLI(t, "pool", "reset", "pool-a", "--csr", csrFile)
	p = startGantryEnv(t, a.env, "launcher")
	if err := p.exit(t, 20*time.Second); err == nil {
		t.Error("a launcher with a reset pool's old token did not fail")
	}
}

// SIGTERM: the launcher takes no new run, gives the run under way the
// shutdown grace, then fails it with a note and exits cleanly. A cycle makes
// every launcher of the pool exit within 20 s.
func TestLauncherShutdownAndCycle(t *testing.T) {
	srv := startServer(t)
	c := srv.as(srv.adminToken(t))
	repo := demoRepo(t)

	term := startLauncherPool(t, srv, "term", 1, "GANTRY_LAUNCHER_SHUTDOWN_GRACE=1s")
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "term", RepositoryUrl: repo, WorkerPoolId: term.id,
		Hooks: &gantryv1.Hooks{BeforePlan: []string{"echo waiting; sleep 60"}}})
	run := c.trigger(t, "term", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_PLANNING)
	if err := term.procs[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := term.procs[0].exit(t, 20*time.Second); err != nil {
		t.Errorf("the launcher exited with %v after SIGTERM, want success", err)
	}
	r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FAILED)
	failed, _ := entered(r, gantryv1.RunState_RUN_STATE_FAILED)
	if !strings.Contains(failed.GetNote(), "shutting down") {
		t.Errorf("failure note %q does not say the launcher shut down", failed.GetNote())
	}

	cycled := startLauncherPool(t, srv, "cycled", 2)
	start := time.Now()
	srv.mustCLI(t, "pool", "cycle", "cycled")
	for i, p := range cycled.procs {
		if err := p.exit(t, 20*time.Second); err != nil {
			t.Errorf("launcher %d exited with %v after the cycle", i, err)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the cycle took %s", d)
	}
	await.Until(t, 10*time.Second, "the cycled workers to leave", func() bool {
		return !strings.Contains(srv.mustCLI(t, "pool", "workers", "cycled"), "IDLE")
	})
}

// A server's operator brings the built-in public pool to life by resetting
// it with a CSR of their key; stacks created without --pool then run on its
// launchers.
func TestPublicPoolOfAServer(t *testing.T) {
	srv := startServer(t)
	csr, key := rsaCSR(t, 2048)
	csrFile := filepath.Join(t.TempDir(), "public.csr")
	if err := os.WriteFile(csrFile, []byte(csr), 0o600); err != nil {
		t.Fatal(err)
	}
	var reset struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "pool", "reset", "wp_public", "--csr", csrFile)), &reset); err != nil {
		t.Fatal(err)
	}
	checkToken(t, srv, reset.Token, "wp_public", key)
	public := &launcherPool{id: "wp_public", name: "public", env: launcherEnv(t, reset.Token, key)}
	public.start(t, srv, 1)
	srv.mustCLI(t, "stack", "create", "plain", "--repo", demoRepo(t))
	c := srv.as(srv.adminToken(t))
	c.waitRunState(t, c.trigger(t, "plain", gantryv1.RunType_RUN_TYPE_PROPOSED), gantryv1.RunState_RUN_STATE_FINISHED)
}

// gantry dev's in-process launchers of the public pool run runs of stacks
// created without --pool, and come back as new workers after a cycle.
func TestDevPublicPoolRunsAndSurvivesACycle(t *testing.T) {
	srv := startServer(t, func(c *serverConfig) {
		c.publicWorkers, c.dataDir, c.path = 2, t.TempDir(), os.Getenv("PATH")
	})
	idle := func() []string {
		var ids []string
		for _, line := range srvLines(srv.mustCLI(t, "pool", "workers", "wp_public")) {
			if f := strings.Fields(line); len(f) > 1 && f[1] == "IDLE" {
				ids = append(ids, f[0])
			}
		}
		return ids
	}
	var before []string
	await.Until(t, 30*time.Second, "two IDLE public workers", func() bool { before = idle(); return len(before) == 2 })
	srv.mustCLI(t, "stack", "create", "dev", "--repo", demoRepo(t), "--autodeploy", "--managed-state")
	c := srv.as(srv.adminToken(t))
	c.waitRunState(t, c.trigger(t, "dev", gantryv1.RunType_RUN_TYPE_TRACKED), gantryv1.RunState_RUN_STATE_FINISHED)

	srv.mustCLI(t, "pool", "cycle", "wp_public")
	await.Until(t, 30*time.Second, "two new IDLE public workers", func() bool {
		after := idle()
		return len(after) == 2 && !slices.Contains(after, before[0]) && !slices.Contains(after, before[1])
	})
}

// An assignment message lost while the launcher reconnects reaches it with
// a heartbeat's answer: the run still runs.
func TestLostAssignmentMessageStillRuns(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "flaky", 1)
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "flaky", RepositoryUrl: demoRepo(t), WorkerPoolId: pool.id})
	// Cut the launcher's connection: it reconnects after a second, and the
	// assignment is sent meanwhile.
	if n, err := srv.bus.DisconnectPool(pool.id); err != nil || n != 1 {
		t.Fatalf("disconnect the pool: %d connections, %v", n, err)
	}
	run := c.trigger(t, "flaky", gantryv1.RunType_RUN_TYPE_PROPOSED)
	r := c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
	ready, _ := entered(r, gantryv1.RunState_RUN_STATE_READY)
	started, _ := entered(r, gantryv1.RunState_RUN_STATE_PREPARING)
	t.Logf("started %s after READY", started.GetTime().AsTime().Sub(ready.GetTime().AsTime()))
}

// TestLauncherWithAnECDSAPoolKey: a pool made with an ECDSA P-256 key (the
// faster option docs/workers.md gives) runs a tracked run with managed state
// and a secret variable, so its launcher opens the secret and each phase's
// state credentials with the EC key.
func TestLauncherWithAnECDSAPoolKey(t *testing.T) {
	srv := startServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	poolID, token := createPoolWithKey(t, srv, "ec", key)
	pool := &launcherPool{id: poolID, name: "ec", env: launcherEnv(t, token, key)}
	pool.start(t, srv, 1)
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "ec", RepositoryUrl: demoRepo(t), WorkerPoolId: pool.id, ManagedState: true, Autodeploy: true})
	const secret = "sealed-to-an-ec-key"
	srv.mustCLI(t, "stack", "env", "set", "ec", "TF_VAR_greeting", secret, "--secret")
	run := c.trigger(t, "ec", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
	logs := srv.mustCLI(t, "run", "logs", run)
	if !strings.Contains(logs, "greeting") || !strings.Contains(logs, "***") || strings.Contains(logs, secret) {
		t.Errorf("the log should show the greeting masked:\n%s", logs)
	}
	if out := srv.mustCLI(t, "stack", "outputs", "ec"); !strings.Contains(out, "greeting") {
		t.Errorf("stack outputs after the apply (state stored with the phase's credentials):\n%s", out)
	}
}
