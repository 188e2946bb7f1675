package executor_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gcblob "gocloud.dev/blob"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// demoConfig is a small configuration that needs no network: terraform_data
// is built into terraform.
const demoConfig = `
variable "message" {
  type    = string
  default = "hello"
}

variable "gantry_run_id" {
  type    = string
  default = ""
}

resource "terraform_data" "demo" {
  input = var.message
}

output "message" {
  value = terraform_data.demo.output
}
`

// noChangesConfig plans nothing: no resources, no outputs.
const noChangesConfig = `
locals {
  nothing = "to do"
}
`

// poolKey is the test pool's private key, made once per test binary.
var poolKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// waitLimit bounds every wait of these tests.
const waitLimit = 60 * time.Second

// testRepo is a real Git repository in a temporary directory.
type testRepo struct {
	t   *testing.T
	dir string
}

// newRepo creates a repository whose first commit holds files.
func newRepo(t *testing.T, files map[string]string) (*testRepo, string) {
	t.Helper()
	r := &testRepo{t: t, dir: filepath.Join(t.TempDir(), "repo")}
	r.git("init", "--quiet", "--initial-branch=main", r.dir)
	return r, r.commit(files)
}

// commit writes files (relative paths; content "" deletes) and commits them,
// returning the commit id.
func (r *testRepo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("-C", r.dir, "add", "--all")
	r.git("-C", r.dir, "commit", "--quiet", "--allow-empty", "-m", "change")
	return strings.TrimSpace(r.git("-C", r.dir, "rev-parse", "HEAD"))
}

func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// harness is an executor with its own work directory and bucket.
type harness struct {
	exec   *executor.Executor
	bucket *gcblob.Bucket
	cfg    executor.Config
	kind   backendKind
	// shared is a directory both the test and the run's processes see at
	// the same path (with Docker, a mount of the run containers).
	shared string
}

// backendKind names the executor's backends in the conformance tests.
type backendKind string

const (
	processKind backendKind = "process"
	dockerKind  backendKind = "docker"
)

// eachBackend runs f as a subtest for the process executor and for the
// Docker executor: the conformance suite of the two backends. The Docker
// one is skipped where no engine answers, unless CI=true.
func eachBackend(t *testing.T, f func(t *testing.T, kind backendKind)) {
	t.Helper()
	for _, kind := range []backendKind{processKind, dockerKind} {
		t.Run(string(kind), func(t *testing.T) {
			if kind == dockerKind {
				requireDocker(t)
			}
			f(t, kind)
		})
	}
}

// newHarness builds a process executor of the test pool; mod adjusts its config.
func newHarness(t *testing.T, mod func(*executor.Config)) *harness {
	t.Helper()
	return newHarnessFor(t, processKind, mod)
}

// newHarnessFor builds an executor of the given backend.
func newHarnessFor(t testing.TB, kind backendKind, mod func(*executor.Config)) *harness {
	t.Helper()
	bucket := openBucket(t, filepath.Join(t.TempDir(), "blobs"))
	return newHarnessOn(t, kind, bucket, mod)
}

// newHarnessOn builds an executor that shares bucket: another worker of the
// same pool.
func newHarnessOn(t testing.TB, kind backendKind, bucket *gcblob.Bucket, mod func(*executor.Config)) *harness {
	t.Helper()
	shared := t.TempDir()
	cfg := executor.Config{
		WorkDir:      t.TempDir(),
		RepoCacheDir: t.TempDir(),
		Path:         os.Getenv("PATH"),
		PoolKey:      poolKey(),
		Workspaces:   executor.BucketStore{Bucket: bucket},
	}
	if kind == dockerKind {
		// The containers' user writes pid files there.
		if err := os.Chmod(shared, 0o777); err != nil {
			t.Fatal(err)
		}
		cfg.Docker = &executor.DockerConfig{
			Labels: map[string]string{testLabel: t.Name()},
			Mounts: []executor.Mount{{Source: shared, Target: shared}},
		}
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := executor.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return &harness{exec: e, bucket: bucket, cfg: cfg, kind: kind, shared: shared}
}

// workspace is where the run's processes see the run's workspace.
func (h *harness) workspace(j executor.Job) string {
	if h.kind == dockerKind {
		return executor.ContainerWorkspace
	}
	return h.cfg.WorkDir + "/gantry-" + j.RunID
}

// gone waits until the process with pid (as the run saw it) of run j has
// ended: with Docker, until the run's containers are gone.
func (h *harness) gone(t *testing.T, j executor.Job, pid int) {
	t.Helper()
	if h.kind == dockerKind {
		waitNoContainers(t, executor.LabelRun+"="+j.RunID)
		return
	}
	processGone(t, pid)
}

func openBucket(t testing.TB, dir string) *gcblob.Bucket {
	t.Helper()
	u, err := objstore.FileURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// job returns a TRACKED autodeploy terraform job of repo at commit.
func job(repo *testRepo, commit string) executor.Job {
	return executor.Job{Job: protocol.Job{
		RunID: "run_" + strconv.FormatInt(time.Now().UnixNano(), 36), StackID: "stk_demo",
		Type: run.Tracked, Autodeploy: true, RepositoryURL: repo.dir, Commit: commit, Tool: stack.Terraform,
	}}
}

// run runs j to its end, bounded by waitLimit.
func (h *harness) run(t testing.TB, j executor.Job, rec *recorder) executor.Result {
	t.Helper()
	return wait(t, h.start(t, context.Background(), j, rec))
}

// start starts j; if the test ends first, the run is stopped and waited for,
// so that no process outlives the test.
func (h *harness) start(t testing.TB, ctx context.Context, j executor.Job, rec *recorder) *executor.Execution {
	t.Helper()
	x, err := h.exec.Start(ctx, j, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		x.Stop()
		<-x.Done()
	})
	return x
}

func wait(t testing.TB, x *executor.Execution) executor.Result {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-x.Done():
	case <-timer.C:
		x.Stop()
		<-x.Done()
		t.Fatalf("the run did not end within %s", waitLimit)
	}
	return x.Wait()
}

// recorder is a Reporter that keeps everything and checks the call order.
type recorder struct {
	mu        sync.Mutex
	current   run.Phase // the phase started and not yet finished
	started   []run.Phase
	finished  []executor.PhaseResult
	lines     map[run.Phase][]string
	problems  []string
	changed   chan struct{} // closed and replaced on every call
	failStart map[run.Phase]error
}

func newRecorder() *recorder {
	return &recorder{lines: map[run.Phase][]string{}, changed: make(chan struct{})}
}

func (r *recorder) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) PhaseStarted(_ context.Context, p run.Phase, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.notify()
	if r.current != "" {
		r.problems = append(r.problems, fmt.Sprintf("%s started while %s is under way", p, r.current))
	}
	if at.IsZero() {
		r.problems = append(r.problems, fmt.Sprintf("%s started at the zero time", p))
	}
	if err := r.failStart[p]; err != nil {
		return err
	}
	r.current = p
	r.started = append(r.started, p)
	return nil
}

func (r *recorder) PhaseFinished(_ context.Context, res executor.PhaseResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.notify()
	if r.current != res.Phase {
		r.problems = append(r.problems, fmt.Sprintf("%s finished while %q is under way", res.Phase, r.current))
	}
	if got, want := string(res.Log), joinLines(r.lines[res.Phase]); got != want {
		r.problems = append(r.problems, fmt.Sprintf("%s: the stored log differs from the streamed lines:\n%q\n%q", res.Phase, got, want))
	}
	r.current = ""
	r.finished = append(r.finished, res)
	return nil
}

func (r *recorder) Log(p run.Phase, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.notify()
	if p != r.current {
		r.problems = append(r.problems, fmt.Sprintf("a %s line while %q is under way: %q", p, r.current, line))
	}
	r.lines[p] = append(r.lines[p], line)
}

func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// check fails the test if the reporter was called out of order.
func (r *recorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		t.Error(p)
	}
	if r.current != "" {
		t.Errorf("%s was started and never finished", r.current)
	}
}

// log returns everything logged in phase p.
func (r *recorder) log(p run.Phase) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return joinLines(r.lines[p])
}

// allLogs returns every streamed line.
func (r *recorder) allLogs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, p := range r.started {
		b.WriteString(joinLines(r.lines[p]))
	}
	return b.String()
}

func (r *recorder) phases() []run.Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run.Phase(nil), r.started...)
}

// waitForLine waits until a streamed line contains s.
func (r *recorder) waitForLine(t *testing.T, s string) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for _, lines := range r.lines {
			for _, l := range lines {
				if strings.Contains(l, s) {
					r.mu.Unlock()
					return
				}
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("no line with %q within %s; the logs:\n%s", s, waitLimit, r.allLogs())
		}
	}
}

// processGone waits until process pid has exited (a zombie counts as gone).
func processGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the command name in parentheses.
		if fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:])); len(fields) > 0 && fields[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still running", pid)
		}
		time.Sleep(20 * time.Millisecond) // a bounded poll: /proc has nothing to wait on
	}
}

// readPID reads a pid a hook wrote.
func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// phaseNames lists the phases of a result.
func phaseNames(res executor.Result) []run.Phase {
	var out []run.Phase
	for _, p := range res.Phases {
		out = append(out, p.Phase)
	}
	return out
}
