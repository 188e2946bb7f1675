package executor

import (
	"context"
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

// Reporter receives what a run does as it happens. The launcher implements
// it: phase starts and results become run events, log lines go out over NATS
// and each phase's log is stored (see StorePhaseLog).
//
// The executor calls it from one goroutine at a time, in order: PhaseStarted,
// the phase's Log lines, PhaseFinished, and so on. The context given to
// PhaseStarted and PhaseFinished is not canceled by Stop or by the run's
// timeouts, so that a stopped run can still report; the Reporter bounds its
// own calls.
type Reporter interface {
	// PhaseStarted is called before a phase's first command. An error
	// aborts the run before the phase does anything: the run ends STOPPED
	// if the error wraps ErrStopRequested, FAILED otherwise. For an
	// autodeploy run the domain starts APPLYING by itself when PLANNING
	// finishes with changes; the Reporter then has nothing to record.
	PhaseStarted(ctx context.Context, phase run.Phase, at time.Time) error
	// PhaseFinished is called once the phase, its hooks included, has
	// ended, with its full masked log. An error fails a run that would
	// otherwise have gone on or finished.
	PhaseFinished(ctx context.Context, result PhaseResult) error
	// Log is called with every line of output, secrets already masked, as
	// soon as the line is complete. It must not block for long: the
	// process's output waits for it.
	Log(phase run.Phase, line string)
}
