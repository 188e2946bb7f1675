package executor

import (
	"github.com/gantryhq/gantry/services/platform/seal"

	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

// ErrStopRequested is the cause to cancel a run's context with
// (context.WithCancelCause) to stop it as Execution.Stop does: the run ends
// STOPPED. Any other cancellation ends it FAILED, with the cause in the note.
var ErrStopRequested = errors.New("stop requested")

// Executor runs jobs on this worker, each in a fresh workspace. It holds no
// state between runs; one Executor may run several jobs at once.
type Executor struct {
	cfg     Config
	poolPub crypto.PublicKey
	log     *slog.Logger
	backend backend
}

// New checks cfg and returns an Executor. A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("executor config: %w", err)
	}
	pub, err := seal.PublicKeyOf(cfg.PoolKey)
	if err != nil {
		return nil, fmt.Errorf("executor config: pool key: %w", err)
	}
	if logger == nil {
		logger = discardLogger()
	}
	cfg = cfg.withDefaults()
	var b backend = processBackend{cfg: cfg}
	if cfg.Docker != nil {
		if b, err = newDockerBackend(cfg, logger); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
	}
	return &Executor{cfg: cfg, poolPub: pub, log: logger, backend: b}, nil
}

// Close releases what the executor keeps between runs (with Docker: the
// container kept ready for the next run) and waits for the removal of the
// containers of runs that ended. Runs must have ended.
func (e *Executor) Close() { e.backend.close() }

// Execution is a run under way.
type Execution struct {
	stop   context.CancelCauseFunc
	done   chan struct{}
	result Result
}

// Start checks job and starts running it; rep receives its progress. The run
// ends when its phases are done, when Stop is called or ctx is canceled
// (with ErrStopRequested as the cause: STOPPED; any other: FAILED), or when
// a timeout expires (FAILED). An invalid job is refused here, before any
// phase starts.
func (e *Executor) Start(ctx context.Context, job Job, rep Reporter) (*Execution, error) {
	if err := job.Validate(); err != nil {
		return nil, fmt.Errorf("run %s: %w", job.RunID, err)
	}
	if rep == nil {
		return nil, fmt.Errorf("run %s: a reporter is required", job.RunID)
	}
	runCtx, stop := context.WithCancelCause(ctx)
	runCtx, cancelTimeout := context.WithTimeoutCause(runCtx, e.cfg.RunTimeout, runTimeoutError{limit: e.cfg.RunTimeout})
	x := &execution{
		cfg: e.cfg, job: job, rep: rep, poolPub: e.poolPub, mask: newMasker(), backend: e.backend,
		log:       e.log.With("run_id", job.RunID, "stack_id", job.StackID),
		reportCtx: context.WithoutCancel(ctx),
	}
	x.mask.add(secretValues(job)...)
	exe := &Execution{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(exe.done)
		defer stop(nil)
		defer cancelTimeout()
		exe.result = x.run(runCtx)
	}()
	return exe, nil
}

// Run is Start and Wait.
func (e *Executor) Run(ctx context.Context, job Job, rep Reporter) (Result, error) {
	x, err := e.Start(ctx, job, rep)
	if err != nil {
		return Result{}, err
	}
	return x.Wait(), nil
}

// Stop asks the run to stop: the running process group gets SIGINT, then
// SIGKILL after the grace period, no further phase starts, and the run ends
// STOPPED. Stopping a run that has ended does nothing.
func (x *Execution) Stop() { x.stop(ErrStopRequested) }

// Done is closed when the run has ended and its workspace is removed.
func (x *Execution) Done() <-chan struct{} { return x.done }

// Wait waits for the run to end and returns its result.
func (x *Execution) Wait() Result {
	<-x.done
	return x.result
}

// runTimeoutError is the cause of a run's context when Config.RunTimeout expires.
type runTimeoutError struct{ limit time.Duration }

func (e runTimeoutError) Error() string {
	return fmt.Sprintf("run timeout: the run took longer than %s", e.limit)
}

// interruption is why the executor ended a process or a run early.
type interruption struct {
	status run.Status // STOPPED or FAILED
	note   string
}

func (i *interruption) Error() string { return i.note }

// failedStatus names the status of runs that end in error.
const failedStatus = run.Failed

// interruption says why ctx, the run's context, was canceled.
func (x *execution) interruption(ctx context.Context) *interruption {
	cause := context.Cause(ctx)
	var timeout runTimeoutError
	switch {
	case errors.Is(cause, ErrStopRequested):
		return &interruption{status: run.Stopped, note: "stopped on request"}
	case errors.As(cause, &timeout):
		return &interruption{status: failedStatus, note: timeout.Error()}
	case cause == nil:
		return &interruption{status: failedStatus, note: "canceled"}
	default:
		return &interruption{status: failedStatus, note: "canceled: " + cause.Error()}
	}
}
