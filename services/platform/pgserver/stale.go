package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds for stopping an orphaned postmaster: fast shutdown first, then immediate shutdown
// (crash recovery at the next start), then SIGKILL.
const (
	orphanFastStop      = 15 * time.Second
	orphanImmediateStop = 5 * time.Second
	orphanKill          = 5 * time.Second
)

// recoverStale deals with a postmaster.pid left behind by a run that did not stop cleanly. The
// caller holds the data dir lock, so a live postmaster found here is an orphan.
func recoverStale(ctx context.Context, dataDir string, logger *slog.Logger) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	content, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pidFile, err)
	}
	firstLine, _, _ := bytes.Cut(content, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(firstLine)))
	if err != nil || pid <= 0 {
		logger.Warn("removing unreadable postmaster.pid", "file", pidFile)
		return removeIfPresent(pidFile)
	}
	if !processAlive(pid) {
		logger.Info("removing stale postmaster.pid of an exited postgres", "file", pidFile, "pid", pid)
		return removeIfPresent(pidFile)
	}
	if !isPostmasterOf(pid, dataDir) {
		// The PID was reused by an unrelated process; postgres would refuse to start while it lives.
		logger.Info("removing stale postmaster.pid whose pid now belongs to another process", "file", pidFile, "pid", pid)
		return removeIfPresent(pidFile)
	}
	logger.Warn("stopping orphaned postgres left running by a previous run", "pid", pid, "data_dir", dataDir)
	if err := stopProcess(ctx, pid); err != nil {
		return fmt.Errorf("stop orphaned postgres (pid %d) on %s: %w", pid, dataDir, err)
	}
	logger.Info("stopped orphaned postgres", "pid", pid)
	// An immediate or killed shutdown leaves the pid file behind.
	return removeIfPresent(pidFile)
}

// stopProcess stops a postmaster that is not our child, escalating as its bounds expire.
func stopProcess(ctx context.Context, pid int) error {
	steps := []struct {
		sig   syscall.Signal
		bound time.Duration
	}{
		{syscall.SIGINT, orphanFastStop},
		{syscall.SIGQUIT, orphanImmediateStop},
		{syscall.SIGKILL, orphanKill},
	}
	for _, step := range steps {
		if err := syscall.Kill(pid, step.sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil
			}
			return fmt.Errorf("send %v: %w", step.sig, err)
		}
		if waitExited(ctx, pid, step.bound) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("still running %v after SIGKILL", orphanKill)
}

// waitExited polls until pid is gone, the bound passes or ctx ends. A process that is not our
// child cannot be waited for, so polling is the only way to observe its exit.
func waitExited(ctx context.Context, pid int, bound time.Duration) bool {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if !processAlive(pid) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return !processAlive(pid)
		case <-tick.C:
		}
	}
}

// processAlive reports whether pid is a running process. A zombie counts as exited: nobody may
// reap it (an orphan's new parent might not), yet it no longer holds the data dir.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may itself contain them.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// isPostmasterOf reports whether pid is a postgres serving dataDir. The postmaster chdirs into
// its data directory, so its cwd identifies the cluster; when the cwd cannot be read (another
// user's process) the program name has to do.
func isPostmasterOf(pid int, dataDir string) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return true
	}
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		want = dataDir
	}
	return cwd == want
}

func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
