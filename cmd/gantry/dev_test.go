package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/testenv"
)

// execEnv makes the test binary run main() instead of the tests, so the
// end-to-end tests drive the real command line without a separate build.
const execEnv = "GANTRY_TEST_EXEC_MAIN"

// gantryProc is a gantry process started by a test.
type gantryProc struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan error
	exited chan struct{} // closed once the process was waited for
}

// startGantry runs the command line in a child process whose
// configuration directory (credentials) is configDir.
func startGantry(t testing.TB, configDir string, args ...string) *gantryProc {
	t.Helper()
	return startGantryEnv(t, []string{auth.ConfigDirEnv + "=" + configDir}, args...)
}

// startGantryEnv runs the command line in a child process with env added
// to the test's environment.
func startGantryEnv(t testing.TB, env []string, args ...string) *gantryProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// Launchers run processes unless a test asks for Docker; servers started
	// this way serve their probes on a free port, never on the default fixed one.
	cmd.Env = append(append(os.Environ(), execEnv+"=1", "GANTRY_LOG_LEVEL=warn", "GANTRY_LAUNCHER_EXECUTOR=process", "GANTRY_INSTRUMENTATION_LISTEN=127.0.0.1:0"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: args[0] + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gantryProc{cmd: cmd, lines: make(chan string, 1000), done: make(chan error, 1), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitLine returns the first line for which match is true.
func (p *gantryProc) waitLine(t *testing.T, within time.Duration, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("gantry exited before printing %s", what)
			}
			if match(line) {
				return line
			}
		case <-timeout:
			t.Fatalf("gantry printed no %s within %s", what, within)
		}
	}
}

// exit waits for a command that ends by itself and returns its exit error.
func (p *gantryProc) exit(t *testing.T, within time.Duration) error {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case _, ok := <-p.lines:
			if ok {
				continue
			}
			select {
			case err := <-p.done:
				return err
			case <-timeout:
				t.Fatalf("gantry did not exit within %s", within)
			}
		case <-timeout:
			t.Fatalf("gantry did not exit within %s", within)
		}
		return nil
	}
}

// interrupt sends Ctrl-C and returns how long the process took to exit.
func (p *gantryProc) interrupt(t *testing.T, within time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	for range p.lines { // drain
	}
	select {
	case err := <-p.done:
		return time.Since(start), err
	case <-time.After(within):
		t.Fatalf("gantry did not exit within %s of Ctrl-C", within)
		return 0, nil
	}
}

type testWriter struct {
	t      testing.TB
	prefix string
}

func (w *testWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(b), nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type devEvent struct{ Name string }

func TestDevServesTheAuditStreamAndStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the whole dev stack")
	}
	dataDir := filepath.Join(filepath.Dir(testenv.ClusterDir(t)), "gantry-data")
	configDir := t.TempDir()
	credentials := filepath.Join(configDir, "credentials.json")
	listen, natsListen := freeAddr(t), freeAddr(t)
	server := "http://" + listen
	dev := startGantry(t, configDir, "dev", "--data-dir", dataDir, "--listen", listen, "--nats-listen", natsListen)
	pgLine := dev.waitLine(t, 60*time.Second, "the postgres line", func(l string) bool { return strings.HasPrefix(l, "postgres ") })
	for _, name := range []string{"nats ", "blob ", "relay ", "projector ", "api "} {
		dev.waitLine(t, 30*time.Second, "the "+name+"line", func(l string) bool { return strings.HasPrefix(l, name) })
	}
	login := dev.waitLine(t, 30*time.Second, "the login line", func(l string) bool { return strings.HasPrefix(l, "login ") })
	dev.waitLine(t, 30*time.Second, "the running line", func(l string) bool { return strings.Contains(l, "is running") })
	creds, err := auth.LoadCredentials(credentials)
	if err != nil {
		t.Fatalf("gantry dev wrote no usable credentials: %v", err)
	}
	if !strings.Contains(login, "created in "+credentials) || strings.Contains(login, creds.Token) || creds.Server != server {
		t.Fatalf("login line %q, credentials for %s: want the file named, the token not printed, the server %s", login, creds.Server, server)
	}
	dbURL := strings.Fields(pgLine)[1]
	pgPID := postmasterPID(t, filepath.Join(dataDir, "postgres"))

	// The CLI finds the server and the admin token in the credentials file.
	repo, _ := gitRepo(t)
	created := startGantry(t, configDir, "stack", "create", "dev-stack", "--repo", repo)
	created.waitLine(t, 30*time.Second, "the created stack", func(l string) bool { return regexpMatch(`^name\s+dev-stack$`, l) })
	if err := created.exit(t, 30*time.Second); err != nil {
		t.Fatalf("stack create: %v", err)
	}

	follow := startGantry(t, configDir, "--server", server, "events", "--follow")
	// A test client appends an event the way any writer does.
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := eventstore.NewRegistry()
	reg.MustRegister("DevTestHappened", 1, devEvent{})
	store := eventstore.New(pool, reg)
	defer store.Close()
	appended, err := store.Append(eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: "user:e2e"}),
		eventstore.Stream{Type: "devtest", ID: "dt_1"}, eventstore.NoStream, devEvent{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	line := follow.waitLine(t, 30*time.Second, "the appended event", func(l string) bool { return strings.Contains(l, appended[0].ID) })
	var got struct {
		Position int64           `json:"position"`
		StreamID string          `json:"stream_id"`
		Type     string          `json:"type"`
		Payload  json.RawMessage `json:"payload"`
		Metadata struct {
			Actor string `json:"actor"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("events printed %q: %v", line, err)
	}
	if got.Position != appended[0].Position || got.StreamID != "dt_1" || got.Type != "DevTestHappened" ||
		string(got.Payload) != `{"Name":"hello"}` || got.Metadata.Actor != "user:e2e" {
		t.Fatalf("events printed %s", line)
	}
	pool.Close()
	store.Close()

	took, err := dev.interrupt(t, 10*time.Second)
	if err != nil {
		t.Fatalf("gantry dev exited with %v after Ctrl-C", err)
	}
	if took > stopTimeout {
		t.Fatalf("gantry dev took %s to stop, more than %s", took, stopTimeout)
	}
	if processAlive(pgPID) {
		t.Fatalf("postgres (pid %d) still runs after gantry dev stopped", pgPID)
	}
	// The follower ends by itself when the server goes away.
	if _, err := follow.interrupt(t, 10*time.Second); err == nil {
		t.Fatal("events --follow exited 0 although the server went away")
	}

	// The data directory is reused: the event is still there, and a crashed
	// run (SIGKILL) leaves nothing that stops the next start.
	dev = startGantry(t, configDir, "dev", "--data-dir", dataDir, "--listen", listen, "--nats-listen", natsListen)
	dev.waitLine(t, 60*time.Second, "the login line of the second start", func(l string) bool {
		return strings.HasPrefix(l, "login ") && strings.Contains(l, "kept in "+credentials)
	})
	dev.waitLine(t, 60*time.Second, "the running line", func(l string) bool { return strings.Contains(l, "is running") })
	replay := startGantry(t, configDir, "--server", server, "events", "--stream", "dt_1")
	replay.waitLine(t, 30*time.Second, "the event from the first run", func(l string) bool { return strings.Contains(l, appended[0].ID) })
	if err := dev.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-dev.done
	dev = startGantry(t, configDir, "dev", "--data-dir", dataDir, "--listen", listen, "--nats-listen", natsListen)
	dev.waitLine(t, 60*time.Second, "the running line after a crash", func(l string) bool { return strings.Contains(l, "is running") })
	if _, err := dev.interrupt(t, 10*time.Second); err != nil {
		t.Fatalf("gantry dev exited with %v", err)
	}
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie is dead for our purpose.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

var _ io.Writer = (*testWriter)(nil)
