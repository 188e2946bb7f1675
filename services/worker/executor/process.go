package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// pipeDrainTimeout bounds the wait for a process's output after its process
// group is gone: only a process that escaped the group (setsid) can still
// hold the pipe open, and its output is not the run's.
const pipeDrainTimeout = 2 * time.Second

// groupPollInterval is how often an interrupted process group is checked
// for having exited during its grace period.
const groupPollInterval = 20 * time.Millisecond

// command is one process the executor runs.
type command struct {
	name    string   // how notes call it: "terraform plan", "before_plan hook #1"
	argv    []string // argv[0] is an absolute path
	display string   // the command line the debug log shows
	dir     string
	env     []string
}

// runCommand runs c in its own process group, passing its output (stdout and
// stderr through one pipe, so their lines keep their order) to l. It returns
// the exit code and nil when the process ran to its end, whatever its
// status. It returns an *interruption when the run was stopped, timed out or
// canceled (the process group got SIGINT, then SIGKILL after the grace
// period), and another error when the process could not be started.
// Whatever happens, no process of the group outlives the call.
func (x *execution) runCommand(ctx context.Context, l *phaseLog, c command) (int, error) {
	if ctx.Err() != nil {
		return ExitNoProcess, x.interruption(ctx)
	}
	if x.job.Debug {
		l.printf("+ %s", c.display)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return ExitNoProcess, fmt.Errorf("%s: create the output pipe: %w", c.name, err)
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path: c.argv[0], Args: c.argv, Dir: c.dir, Env: c.env, Stdout: w, Stderr: w,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = cmd.Start()
	w.Close() // the child has its copy; EOF comes when every holder is gone
	if err != nil {
		return ExitNoProcess, fmt.Errorf("start %s: %w", c.name, err)
	}
	pgid := cmd.Process.Pid // Setpgid: the process leads a group of its own

	var lastOutput atomic.Int64
	lastOutput.Store(time.Now().UnixNano())
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pump(r, l, func() { lastOutput.Store(time.Now().UnixNano()) })
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	intr := x.supervise(ctx, c, exited, &lastOutput)
	if intr != nil {
		l.printf("%s: interrupting %s", intr.note, c.name)
		x.terminate(pgid, exited)
		<-exited
	}
	// Nothing a command started outlives it: background processes left in
	// its group are killed with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	drain := time.NewTimer(pipeDrainTimeout)
	defer drain.Stop()
	select {
	case <-pumped:
	case <-drain.C:
		r.Close()
		<-pumped
	}

	code := exitCode(cmd.ProcessState)
	if intr != nil {
		return code, intr
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return code, fmt.Errorf("wait for %s: %w", c.name, waitErr)
	}
	return code, nil
}

// supervise waits for the process to exit and returns nil, or returns why it
// must be interrupted: a stop, the run timeout, a cancellation, or the logs
// timeout (no output for Config.LogsTimeout).
func (x *execution) supervise(ctx context.Context, c command, exited <-chan struct{}, lastOutput *atomic.Int64) *interruption {
	idle := time.NewTimer(x.cfg.LogsTimeout)
	defer idle.Stop()
	for {
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return x.interruption(ctx)
		case <-idle.C:
			quiet := time.Since(time.Unix(0, lastOutput.Load()))
			if quiet < x.cfg.LogsTimeout {
				idle.Reset(x.cfg.LogsTimeout - quiet)
				continue
			}
			return &interruption{status: failedStatus, note: fmt.Sprintf(
				"logs timeout: %s printed nothing for %s", c.name, x.cfg.LogsTimeout)}
		}
	}
}

// terminate sends SIGINT to the process group, waits up to the grace period
// for the whole group to exit, then sends SIGKILL.
func (x *execution) terminate(pgid int, exited <-chan struct{}) {
	_ = syscall.Kill(-pgid, syscall.SIGINT)
	grace := time.NewTimer(x.cfg.StopGrace)
	defer grace.Stop()
	poll := time.NewTicker(groupPollInterval)
	defer poll.Stop()
	for {
		select {
		case <-grace.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-poll.C:
			select {
			case <-exited:
				// The leader is reaped; the group lives while any member does.
				if syscall.Kill(-pgid, 0) != nil {
					return
				}
			default:
			}
		}
	}
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
