package pgserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// readyTimeout bounds how long Start waits for postgres to accept connections.
	readyTimeout = 30 * time.Second
	// forcedStopTimeout bounds the wait after an immediate shutdown (SIGQUIT) before SIGKILL.
	forcedStopTimeout = 5 * time.Second
	// portAttempts is how many free ports Start tries when another process takes the one it
	// picked before postgres binds it.
	portAttempts = 3
)

// pickPort chooses the port when Config.Port is 0; tests replace it to force a collision.
var pickPort = freePort

// errPortTaken marks a start that failed because the port was bound by someone else.
var errPortTaken = errors.New("port already in use")

// Server is a running postmaster started by Start, a child of this process.
type Server struct {
	dataDir string
	port    int
	logger  *slog.Logger
	proc    *os.Process
	lock    *os.File

	done     chan struct{}
	waitErr  error // set before done is closed
	stopping atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start runs a cluster in cfg.DataDir, initialising it first when it has none, and returns once
// it accepts connections. The postmaster is a child process that receives SIGINT (fast shutdown)
// if this process dies; Stop must be called to stop it and release the data dir.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("postgres config: %w", err)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := clusterUser()
	if err != nil {
		return nil, err
	}
	if err := prepareDataDir(cfg.DataDir, u); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	srv, err := startLocked(ctx, cfg, u, lock)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	return srv, nil
}

// startLocked does the work of Start while the data dir lock is held.
func startLocked(ctx context.Context, cfg Config, u osUser, lock *os.File) (*Server, error) {
	if err := recoverStale(ctx, cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	if err := chownTree(cfg.DataDir, u); err != nil {
		return nil, err
	}
	ok, err := initialized(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if !ok {
		cfg.Logger.Info("initialising postgres cluster", "data_dir", cfg.DataDir, "bin_dir", cfg.BinDir, "user", u.name)
		out, err := initCluster(ctx, cfg, u)
		if err != nil {
			return nil, err
		}
		if err := appendLog(cfg.DataDir, u, out); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		port := cfg.Port
		if port == 0 {
			if port, err = pickPort(); err != nil {
				return nil, err
			}
		}
		srv, err := launch(ctx, cfg, u, port, lock)
		if err == nil {
			return srv, nil
		}
		if cfg.Port != 0 || !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return nil, err
		}
		cfg.Logger.Info("port was taken before postgres bound it; trying another", "port", port)
	}
}

// appendLog writes initdb's output at the head of the log.
func appendLog(dataDir string, u osUser, out []byte) error {
	f, _, err := openLog(dataDir, u)
	if err != nil {
		return err
	}
	if _, err := f.Write(out); err != nil {
		_ = f.Close()
		return fmt.Errorf("write initdb output to postgres log: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close postgres log: %w", err)
	}
	return nil
}

// launch starts the postmaster on port and waits until it accepts connections; on failure the
// process is gone when it returns.
func launch(ctx context.Context, cfg Config, u osUser, port int, lock *os.File) (*Server, error) {
	logFile, offset, err := openLog(cfg.DataDir, u)
	if err != nil {
		return nil, err
	}
	cmd := postgresCommand(cfg, u, port)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT

	s := &Server{dataDir: cfg.DataDir, port: port, logger: cfg.Logger, lock: lock, done: make(chan struct{})}
	started := make(chan error, 1)
	go s.run(cmd, started)
	err = <-started
	// The child has its own descriptor for the log; ours is no longer needed.
	_ = logFile.Close()
	if err != nil {
		return nil, fmt.Errorf("start postgres in %s: %w", cfg.DataDir, err)
	}
	s.proc = cmd.Process
	cfg.Logger.Info("postgres starting", "data_dir", cfg.DataDir, "port", port, "pid", s.proc.Pid)

	if err := s.waitReady(ctx); err != nil {
		s.forceStop()
		out := readLogSince(filepath.Join(cfg.DataDir, logFileName), offset)
		if strings.Contains(out, "could not create any TCP/IP sockets") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return nil, fmt.Errorf("postgres in %s on port %d: %w; %s ends with:\n%s",
			cfg.DataDir, port, err, logFileName, tail([]byte(out), tailLines))
	}
	cfg.Logger.Info("postgres ready", "port", port)
	return s, nil
}

// run starts the child and waits for it. Pdeathsig fires when the thread that forked the child
// exits, not the process (golang/go#27505), so this goroutine stays locked to its thread for the
// child's whole life; the thread is discarded when the goroutine returns.
func (s *Server) run(cmd *exec.Cmd, started chan<- error) {
	runtime.LockOSThread()
	if err := cmd.Start(); err != nil {
		s.waitErr = err
		close(s.done)
		started <- err
		return
	}
	started <- nil
	err := cmd.Wait()
	if !s.stopping.Load() {
		s.logger.Error("postgres exited unexpectedly", "pid", cmd.Process.Pid, "err", err)
	}
	s.waitErr = err
	close(s.done)
}

// waitReady polls until the server accepts connections, it exits, or readyTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	want := filepath.Clean(s.dataDir)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		dir, err := s.dataDirectory(ctx)
		switch {
		case err != nil:
			lastErr = err
		case filepath.Clean(dir) == want:
			return nil
		default:
			// Someone else's cluster holds the port; ours will fail to bind and exit.
			lastErr = fmt.Errorf("port %d is served by the cluster in %s", s.port, dir)
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited during start-up (%v)", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections (%w): %w", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// dataDirectory asks whoever answers on our port which data directory it serves.
func (s *Server) dataDirectory(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		return "", fmt.Errorf("show data_directory: %w", err)
	}
	return dir, nil
}

// forceStop does an immediate shutdown, then kills; it returns once the process has exited.
func (s *Server) forceStop() {
	s.stopping.Store(true)
	_ = s.proc.Signal(syscall.SIGQUIT)
	timer := time.NewTimer(forcedStopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
		return
	case <-timer.C:
	}
	s.logger.Warn("postgres ignored an immediate shutdown; killing it", "pid", s.proc.Pid)
	_ = s.proc.Signal(syscall.SIGKILL)
	<-s.done
}

// URL returns a connection URL for database on this server, as the postgres superuser.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     fmt.Sprintf("127.0.0.1:%d", s.port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on at 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DataDir returns the absolute path of the cluster's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Done returns a channel closed when the postmaster has exited, for whatever reason.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait blocks until the postmaster has exited and returns how it exited (nil for a clean exit).
func (s *Server) Wait() error {
	<-s.done
	return s.waitErr
}

// Stop shuts the server down with a fast shutdown (SIGINT: open sessions are ended, data is
// kept) and waits for it. If ctx ends first it escalates to an immediate shutdown and then
// SIGKILL, and reports that it had to. It releases the data dir, is idempotent, and must be
// called even when the server already exited by itself.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop(ctx)
		if err := s.lock.Close(); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("release lock on %s: %w", s.dataDir, err)
		}
	})
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	s.stopping.Store(true)
	select {
	case <-s.done:
		return nil
	default:
	}
	s.logger.Info("stopping postgres", "pid", s.proc.Pid)
	if err := s.proc.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal postgres (pid %d) to stop: %w", s.proc.Pid, err)
	}
	select {
	case <-s.done:
		s.logger.Info("postgres stopped")
		return nil
	case <-ctx.Done():
	}
	s.logger.Warn("postgres did not stop in time; forcing an immediate shutdown", "pid", s.proc.Pid)
	s.forceStop()
	return fmt.Errorf("stop postgres in %s: forced an immediate shutdown: %w", s.dataDir, ctx.Err())
}
