package executor

import (
	"context"
	"crypto"
	"log/slog"

	"github.com/gantryhq/gantry/domain/run"
)

// execution is the state of one run while its goroutine runs it.
type execution struct {
	cfg       Config
	job       Job
	rep       Reporter
	poolPub   crypto.PublicKey
	mask      *masker
	log       *slog.Logger
	reportCtx context.Context // for the Reporter: not canceled by Stop or timeouts

	backend backend
	ws      *workspace
	tools   tools
	hostSB  *hostSandbox // git, and the commands of the process backend
	sb      sandbox      // the commands of the phases, once open
	sbWrite bool         // the scope sb was opened for (see WritePhase)

	hasChanges  bool
	unconfirmed bool
	results     []PhaseResult
}

// run runs the job's phases in order and returns the result. It removes the
// workspace before returning.
func (x *execution) run(ctx context.Context) Result {
	defer x.removeWorkspace()
	defer x.closeSandboxes()
	x.log.Info("run started", "type", x.job.Type, "confirmed", x.job.Confirmed)
	f := x.sequence(ctx)
	res := Result{Status: run.Finished, HasChanges: x.hasChanges, Phases: x.results}
	switch {
	case f != nil:
		res.Status, res.Note = f.status, x.mask.mask(f.note)
	case x.unconfirmed:
		res.Status = run.Unconfirmed
	}
	x.log.Info("run ended", "status", res.Status, "note", res.Note, "has_changes", res.HasChanges)
	return res
}

// sequence runs the phase sequence of the job's kind and returns why it ended
// early, or nil.
func (x *execution) sequence(ctx context.Context) *failure {
	if x.job.Confirmed {
		if f := x.phase(ctx, run.PhasePreparingApply, x.restore); f != nil {
			return f
		}
		return x.phase(ctx, x.job.applyPhase(), x.apply)
	}
	if f := x.phase(ctx, run.PhasePreparing, x.prepare); f != nil {
		return f
	}
	if f := x.phase(ctx, run.PhaseInitializing, x.initialize); f != nil {
		return f
	}
	if x.job.Type == run.Task {
		return x.phase(ctx, run.PhasePerforming, x.perform)
	}
	if f := x.phase(ctx, run.PhasePlanning, x.plan); f != nil {
		return f
	}
	if x.job.Type == run.Tracked && x.hasChanges && x.job.Autodeploy {
		return x.phase(ctx, x.job.applyPhase(), x.apply)
	}
	return nil
}
