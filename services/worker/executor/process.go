package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// processBackend runs a run's commands as processes on the worker's host,
// as the launcher's user, in a fresh directory per run.
type processBackend struct {
	cfg Config
}

func (b processBackend) newWorkspace(runID string) (*workspace, error) {
	return newWorkspace(b.cfg.WorkDir, runID)
}

func (b processBackend) open(_ context.Context, x *execution, _ bool) (sandbox, error) {
	return x.host(), nil
}

func (processBackend) sameSandbox() bool { return true }

func (processBackend) close() {}

// hostSandbox runs commands on the host: the phases' commands with the
// process backend, git with either backend. One hostSandbox serves one run.
type hostSandbox struct {
	tools tools
	path_ string // PATH of the run's processes

	mu       sync.Mutex
	watch    *groupWatch
	watchErr error
}

// host returns the run's host sandbox, made at the first call.
func (x *execution) host() *hostSandbox {
	if x.hostSB == nil {
		x.hostSB = &hostSandbox{tools: x.tools, path_: x.cfg.Path}
	}
	return x.hostSB
}

func (s *hostSandbox) path(p string) string { return p }

func (s *hostSandbox) searchPath() string { return s.path_ }

// sharedPath: the run's processes see the host's paths as they are.
func (s *hostSandbox) sharedPath(p string) (string, bool) { return p, filepath.IsAbs(p) }

// close ends the group watch: the run's groups are gone by now.
func (s *hostSandbox) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch != nil {
		s.watch.stop()
		s.watch = nil
	}
}

// program is the absolute path of a command's program on the host.
func (s *hostSandbox) program(prog string) (string, error) {
	switch {
	case prog == "sh" && s.tools.sh != "":
		return s.tools.sh, nil
	case prog == "git" && s.tools.git != "":
		return s.tools.git, nil
	case s.tools.tool != "" && (prog == "terraform" || prog == "tofu"):
		return s.tools.tool, nil
	}
	return "", fmt.Errorf("%s was not looked up on this worker", prog)
}

// start runs c in a process group of its own, so that a signal reaches
// everything it starts, and registers the group with the run's group
// watch, which kills it if the launcher dies. The process itself also gets
// SIGKILL as its parent-death signal; the caller's goroutine must stay
// locked to its OS thread until the process has exited, since that signal
// follows the thread that started the process.
func (s *hostSandbox) start(c command) (proc, io.ReadCloser, error) {
	prog, err := s.program(c.prog)
	if err != nil {
		return nil, nil, err
	}
	watch, err := s.groupWatch()
	if err != nil {
		return nil, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create the output pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path: prog, Args: append([]string{prog}, c.args...), Dir: c.dir, Env: c.env, Stdout: w, Stderr: w,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	err = cmd.Start()
	w.Close() // the child has its copy; EOF comes when every holder is gone
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	p := &hostProc{cmd: cmd, pgid: cmd.Process.Pid, done: make(chan struct{}), watch: watch}
	watch.add(p.pgid)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, r, nil
}

// groupWatch returns the run's group watch, started at the first call.
func (s *hostSandbox) groupWatch() (*groupWatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch == nil && s.watchErr == nil {
		s.watch, s.watchErr = startGroupWatch(s.tools.sh)
	}
	return s.watch, s.watchErr
}

// hostProc is a process group on the host.
type hostProc struct {
	cmd     *exec.Cmd
	pgid    int
	done    chan struct{}
	waitErr error
	watch   *groupWatch
	once    sync.Once
}

func (p *hostProc) exited() <-chan struct{} { return p.done }

func (p *hostProc) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.pgid, sig)
	if sig == syscall.SIGKILL {
		select {
		case <-p.done:
			// The group is gone: the watch may forget it.
			p.once.Do(func() { p.watch.remove(p.pgid) })
		default:
		}
	}
}

// alive: the leader may be reaped while the group lives on in any member.
func (p *hostProc) alive() bool { return syscall.Kill(-p.pgid, 0) == nil }

func (p *hostProc) result() (int, error) {
	code := exitCode(p.cmd.ProcessState)
	var exitErr *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exitErr) {
		return code, p.waitErr
	}
	return code, nil
}

// exitCode is the process's exit status, 128+N when signal N killed it, or
// ExitNoProcess when it did not run.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return ExitNoProcess
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignalBase + int(ws.Signal())
	}
	return ps.ExitCode()
}
