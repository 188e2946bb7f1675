package executor

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// pipeDrainTimeout bounds the wait for a command's output after everything
// it started is gone: only a process that escaped (setsid) can still hold
// the output open, and its output is not the run's.
const pipeDrainTimeout = 2 * time.Second

// groupPollInterval is how often an interrupted command is checked for
// having ended during its grace period.
const groupPollInterval = 20 * time.Millisecond

// command is one process the executor runs.
type command struct {
	name    string   // how notes call it: "terraform plan", "before_plan hook #1"
	prog    string   // "sh", "git" or the stack's tool: the sandbox finds it
	args    []string // its arguments
	display string   // the command line the debug log shows
	dir     string   // the working directory, a host path in the workspace
	env     []string
}

// runCommand runs c in sb, passing its output (stdout and stderr together,
// in the order written) to l. It returns the exit code and nil when the
// process ran to its end, whatever its status. It returns an *interruption
// when the run was stopped, timed out or canceled (everything c started got
// SIGINT, then SIGKILL after the grace period), and another error when the
// process could not be started. Whatever happens, nothing c started
// outlives the call.
func (x *execution) runCommand(ctx context.Context, l *phaseLog, sb sandbox, c command) (int, error) {
	if ctx.Err() != nil {
		return ExitNoProcess, x.interruption(ctx)
	}
	if x.job.Debug {
		l.printf("+ %s", c.display)
	}
	// A process's parent-death signal follows the OS thread that started
	// it: keep this goroutine, and so that thread, until the process ended.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, out, err := sb.start(c)
	if err != nil {
		return ExitNoProcess, fmt.Errorf("start %s: %w", c.name, err)
	}
	defer out.Close()

	var lastOutput atomic.Int64
	lastOutput.Store(time.Now().UnixNano())
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pump(out, l, func() { lastOutput.Store(time.Now().UnixNano()) })
	}()

	intr := x.supervise(ctx, c, p.exited(), &lastOutput)
	if intr != nil {
		l.printf("%s: interrupting %s", intr.note, c.name)
		x.terminate(p)
		<-p.exited()
	}
	// Nothing a command started outlives it: background processes are
	// killed with it.
	p.signal(syscall.SIGKILL)
	drain := time.NewTimer(pipeDrainTimeout)
	defer drain.Stop()
	select {
	case <-pumped:
	case <-drain.C:
		out.Close()
		<-pumped
	}

	code, err := p.result()
	if intr != nil {
		return code, intr
	}
	if err != nil {
		return code, fmt.Errorf("wait for %s: %w", c.name, err)
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

// terminate sends SIGINT to everything the command started, waits up to
// the grace period for all of it to end, then sends SIGKILL.
func (x *execution) terminate(p proc) {
	p.signal(syscall.SIGINT)
	grace := time.NewTimer(x.cfg.StopGrace)
	defer grace.Stop()
	poll := time.NewTicker(groupPollInterval)
	defer poll.Stop()
	for {
		select {
		case <-grace.C:
			p.signal(syscall.SIGKILL)
			return
		case <-poll.C:
			select {
			case <-p.exited():
				if !p.alive() {
					return
				}
			default:
			}
		}
	}
}
