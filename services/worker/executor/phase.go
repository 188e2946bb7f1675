package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

// failure is why a phase, and with it the run, ended early.
type failure struct {
	status run.Status // FAILED or STOPPED
	note   string
	exit   int // the phase's exit code
	// interrupted: stopped, timed out or canceled; nothing more runs, not
	// even the after_run hooks.
	interrupted bool
}

// phase is one phase under way.
type phase struct {
	name       run.Phase
	log        *phaseLog
	env        []string // the environment of the phase's commands
	hasChanges bool
	changed    []string // drift runs: the resources the plan changes
	// summary counts what the plan changes (PLANNING only; nil until the
	// plan succeeded, or when it could not be read).
	summary *run.PlanSummary
	outputs []run.Output // the run's outputs, once read
}

// commandPhases are the phases that run the job's commands, with the job's
// environment.
var commandPhases = map[run.Phase]bool{
	run.PhaseInitializing: true, run.PhasePlanning: true, run.PhaseApplying: true, run.PhaseDestroying: true, run.PhasePerforming: true,
}

// phase reports the start of phase p, runs body, and reports its result. It
// does not start p when the run was stopped, timed out or canceled.
func (x *execution) phase(ctx context.Context, p run.Phase, body func(context.Context, *phase) *failure) *failure {
	if ctx.Err() != nil {
		return interrupted(x.interruption(ctx), ExitNoProcess)
	}
	ph := &phase{name: p, log: newPhaseLog(p, x.rep, x.mask)}
	started := time.Now()
	if err := x.rep.PhaseStarted(x.reportCtx, p, started); err != nil {
		x.log.Warn("reporting the start of a phase failed", "phase", p, "error", err)
		f := &failure{status: failedStatus, note: fmt.Sprintf("report the start of %s: %v", p, err), exit: ExitNoProcess, interrupted: true}
		if errors.Is(err, ErrStopRequested) {
			f.status = run.Stopped
		}
		return f
	}
	x.log.Debug("phase started", "phase", p)

	f := x.phaseEnv(ctx, ph)
	if f == nil {
		f = body(ctx, ph)
	}
	res := PhaseResult{Phase: p, HasChanges: ph.hasChanges, Started: started, Duration: time.Since(started), Outputs: ph.outputs, ChangedResources: ph.changed, Plan: ph.summary}
	if f != nil {
		res.ExitCode, res.Note = f.exit, x.mask.mask(f.note)
	}
	res.Log = ph.log.bytes()
	x.results = append(x.results, res)
	x.log.Info("phase finished", "phase", p, "exit_code", res.ExitCode, "duration", res.Duration, "has_changes", res.HasChanges)
	if err := x.rep.PhaseFinished(x.reportCtx, res); err != nil {
		x.log.Warn("reporting the result of a phase failed", "phase", p, "error", err)
		if f == nil {
			f = &failure{status: failedStatus, note: fmt.Sprintf("report the result of %s: %v", p, err), interrupted: true}
		}
	}
	return f
}

// phaseEnv builds the environment of a phase that runs the job's commands,
// with the variables Job.PhaseEnv gives it.
func (x *execution) phaseEnv(ctx context.Context, ph *phase) *failure {
	if !commandPhases[ph.name] {
		return nil
	}
	if f := x.openSandbox(ctx, ph, ph.name); f != nil {
		return f
	}
	var extra []Variable
	if x.job.PhaseEnv != nil {
		vars, err := x.job.PhaseEnv(ctx, ph.name)
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(x.interruption(ctx), ExitNoProcess)
			}
			return x.fail(ph, ExitNoProcess, "get the variables of %s: %v", ph.name, err)
		}
		for _, v := range vars {
			if !envNamePattern.MatchString(v.Name) {
				return x.fail(ph, ExitNoProcess, "the variables of %s: %q is not a variable name", ph.name, v.Name)
			}
		}
		x.mask.add(maskedValues(vars, x.job.MaskNames)...)
		extra = vars
	}
	ph.env = x.environ(ph.name, extra)
	return nil
}

// fail logs a failure of the phase and returns it.
func (x *execution) fail(ph *phase, exit int, format string, args ...any) *failure {
	note := fmt.Sprintf(format, args...)
	ph.log.printf("%s", note)
	return &failure{status: failedStatus, note: note, exit: exit}
}

// interrupted turns an interruption into the failure of a phase.
func interrupted(i *interruption, exit int) *failure {
	return &failure{status: i.status, note: i.note, exit: exit, interrupted: true}
}

// commandFailure turns the outcome of runCommand into the failure of a phase,
// or nil when the command succeeded.
func (x *execution) commandFailure(ph *phase, c command, code int, err error) *failure {
	var i *interruption
	switch {
	case errors.As(err, &i):
		return interrupted(i, code)
	case err != nil:
		return x.fail(ph, code, "%v", err)
	case code != 0:
		return x.fail(ph, code, "%s exited with code %d", c.name, code)
	}
	return nil
}
