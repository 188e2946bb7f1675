package pgserver

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ownerHelperEnv makes the test binary act as a process that owns a cluster and then dies.
const ownerHelperEnv = "GANTRY_PGSERVER_OWNER_HELPER_DIR"

// runOwnerHelper starts a cluster in dir, prints the postmaster's PID and waits to be killed.
func runOwnerHelper(dir string) {
	srv, err := Start(context.Background(), Config{DataDir: dir})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("pid %d\n", srv.proc.Pid)
	<-srv.Done()
	os.Exit(1)
}

func TestPostgresStopsWhenOwnerDies(t *testing.T) {
	t.Parallel()
	dir := testDataDir(t)
	owner := exec.Command(os.Args[0], "-test.run=^$")
	owner.Env = append(os.Environ(), ownerHelperEnv+"="+dir)
	out, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(); err != nil {
		t.Fatalf("start owner process: %v", err)
	}
	t.Cleanup(func() {
		_ = owner.Process.Kill()
		_ = owner.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read from owner process: %v", err)
	}
	pidText, ok := strings.CutPrefix(strings.TrimSpace(line), "pid ")
	if !ok {
		t.Fatalf("owner process: %s", line)
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		t.Fatalf("owner printed %q: %v", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	// SIGKILL leaves the owner no chance to stop postgres itself.
	if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill owner: %v", err)
	}
	_ = owner.Wait()
	if !waitExited(context.Background(), pid, 30*time.Second) {
		t.Fatalf("postgres (pid %d) still running 30s after its owner died", pid)
	}
	// The fast shutdown removed postmaster.pid, so the next start needs no recovery.
	rec := &recorder{}
	srv := startServer(t, Config{DataDir: dir, Logger: slog.New(rec)})
	connect(t, srv.URL("postgres"))
	if rec.logged("postmaster.pid") || rec.logged("orphan") {
		t.Fatalf("start after the owner died needed recovery: %q", rec.all())
	}
}
