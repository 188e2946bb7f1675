package pgserver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// initCluster creates a cluster in a fresh data dir and leaves it stopped.
func initStoppedCluster(t *testing.T) string {
	t.Helper()
	dir := testDataDir(t)
	stopServer(t, startServer(t, Config{DataDir: dir}))
	return dir
}

// writePidFile fakes the postmaster.pid a crashed run leaves behind.
func writePidFile(t *testing.T, dir string, pid int) {
	t.Helper()
	content := fmt.Sprintf("%d\n%s\n%d\n5432\n\n127.0.0.1\n", pid, dir, time.Now().Unix())
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(content), 0o600); err != nil {
		t.Fatalf("write postmaster.pid: %v", err)
	}
}

func TestStartRemovesPidFileOfDeadProcess(t *testing.T) {
	t.Parallel()
	dir := initStoppedCluster(t)
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatalf("run true: %v", err)
	}
	writePidFile(t, dir, exited.Process.Pid)

	rec := &recorder{}
	srv := startServer(t, Config{DataDir: dir, Logger: slog.New(rec)})
	connect(t, srv.URL("postgres"))
	if !rec.logged("removing stale postmaster.pid of an exited postgres") {
		t.Fatalf("recovery not logged; messages: %q", rec.all())
	}
}

func TestStartRemovesPidFileOfUnrelatedProcess(t *testing.T) {
	t.Parallel()
	dir := initStoppedCluster(t)
	// A live process that is not postgres holds the recorded PID, as after a reboot; postgres
	// itself would refuse to start, and the process must be left alone.
	other := exec.Command("sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	})
	writePidFile(t, dir, other.Process.Pid)

	rec := &recorder{}
	srv := startServer(t, Config{DataDir: dir, Logger: slog.New(rec)})
	connect(t, srv.URL("postgres"))
	if !rec.logged("pid now belongs to another process") {
		t.Fatalf("recovery not logged; messages: %q", rec.all())
	}
	if !processAlive(other.Process.Pid) {
		t.Fatal("recovery killed an unrelated process")
	}
}

func TestStartStopsOrphanedPostgres(t *testing.T) {
	t.Parallel()
	dir := initStoppedCluster(t)
	orphan := startOrphan(t, dir)

	rec := &recorder{}
	srv := startServer(t, Config{DataDir: dir, Logger: slog.New(rec)})
	if processAlive(orphan.Process.Pid) {
		t.Fatalf("orphaned postgres (pid %d) still running after Start", orphan.Process.Pid)
	}
	if !rec.logged("stopping orphaned postgres") {
		t.Fatalf("recovery not logged; messages: %q", rec.all())
	}
	connect(t, srv.URL("postgres"))
}

// startOrphan runs a postmaster on dir the way a crashed gantry leaves one behind: no parent
// death signal and no data dir lock held. It waits until the orphan accepts connections.
func startOrphan(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cfg, err := Config{DataDir: dir}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	u, err := clusterUser()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logFile, _, err := openLog(dir, u)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := postgresCommand(cfg, u, port)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start orphan postgres: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	})

	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			_ = conn.Close(ctx)
			return cmd
		}
		select {
		case <-ctx.Done():
			t.Fatalf("orphan postgres never accepted connections: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
