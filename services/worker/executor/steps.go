package executor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// Exit statuses of `plan -detailed-exitcode`.
const (
	planNoChanges = 0
	planChanges   = 2
)

// initialize is INITIALIZING: before_init, <tool> init, after_init.
func (x *execution) initialize(ctx context.Context, ph *phase) *failure {
	if f := x.hooks(ctx, ph, "before_init", x.job.Hooks.BeforeInit); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	// With managed state, a backend of the code's own would silently win
	// over (or clash with) the override: refuse it, naming the file.
	if x.job.BackendOverride != nil {
		if err := tfbackend.CheckNoBackend(x.ws.project); err != nil {
			return x.afterRun(ctx, ph, x.fail(ph, ExitNoProcess, "%v", err))
		}
	}
	// One init at a time per shared provider cache (plugincache.go).
	unlock, f := x.lockPluginCache(ctx, ph)
	if f != nil {
		return x.afterRun(ctx, ph, f)
	}
	code, err := x.runTool(ctx, ph, "init", "-input=false")
	unlock()
	if f := x.toolFailure(ph, "init", code, err); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	if f := x.hooks(ctx, ph, "after_init", x.job.Hooks.AfterInit); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	return nil
}

// plan is PLANNING: before_plan, <tool> plan into the workspace's plan file,
// after_plan. The run ends here (after_run) when it is PROPOSED, when the
// plan has no changes, or on failure; a TRACKED run with changes goes on to
// APPLYING when it deploys automatically, and otherwise saves its workspace
// and ends UNCONFIRMED.
func (x *execution) plan(ctx context.Context, ph *phase) *failure {
	if f := x.hooks(ctx, ph, "before_plan", x.job.Hooks.BeforePlan); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	ph.log.watchPlanLine(true)
	code, err := x.runTool(ctx, ph, x.planArgs()...)
	printed, ok := ph.log.watchPlanLine(false)
	switch {
	case err == nil && code == planNoChanges:
	case err == nil && code == planChanges:
		ph.hasChanges, x.hasChanges = true, true
		if ok && !x.job.Drift {
			// The tool's own "Plan:" line says what the summary needs:
			// no second process. A drift run needs the addresses too.
			ph.summary = &printed
			break
		}
		x.readPlan(ctx, ph)
	default:
		return x.afterRun(ctx, ph, x.toolFailure(ph, "plan", code, err))
	}
	if !ph.hasChanges {
		ph.summary = &run.PlanSummary{}
	}
	if f := x.hooks(ctx, ph, "after_plan", x.job.Hooks.AfterPlan); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	switch {
	case x.job.Type == run.Proposed || !ph.hasChanges:
		return x.afterRun(ctx, ph, nil)
	case x.job.Autodeploy:
		return nil
	}
	if f := x.save(ctx, ph); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	x.unconfirmed = true
	return nil
}

// apply is APPLYING: before_apply, <tool> apply of exactly the saved plan,
// the run's outputs, after_apply, after_run.
func (x *execution) apply(ctx context.Context, ph *phase) *failure {
	if f := x.hooks(ctx, ph, "before_apply", x.job.Hooks.BeforeApply); f != nil {
		return x.afterRun(ctx, ph, f)
	}
	code, err := x.runTool(ctx, ph, "apply", "-input=false", x.sb.path(x.ws.planFile))
	if f := x.toolFailure(ph, "apply", code, err); f != nil {
		x.rescueState(ph)
		return x.afterRun(ctx, ph, f)
	}
	x.readOutputs(ctx, ph)
	f := x.hooks(ctx, ph, "after_apply", x.job.Hooks.AfterApply)
	return x.afterRun(ctx, ph, f)
}

// perform is PERFORMING: the task's command with sh -c, the run's outputs
// when it succeeded, then after_run.
func (x *execution) perform(ctx context.Context, ph *phase) *failure {
	c := command{
		name:    "the task's command",
		prog:    "sh",
		args:    []string{"-c", x.job.TaskCommand},
		display: shellJoin("sh", "-c", x.job.TaskCommand),
		dir:     x.ws.project, env: ph.env,
	}
	code, err := x.runCommand(ctx, ph.log, x.sb, c)
	f := x.commandFailure(ph, c, code, err)
	if f == nil {
		x.readOutputs(ctx, ph)
	} else {
		x.rescueState(ph)
	}
	return x.afterRun(ctx, ph, f)
}

// erroredState is the file terraform and tofu write the state to when the
// backend would not take it.
const erroredState = "errored.tfstate"

// rescueState stores the state the tool left in errored.tfstate, if any,
// before the workspace (and the state with it) is removed: the changes the
// phase made are then in the stored state after all.
func (x *execution) rescueState(ph *phase) {
	path := filepath.Join(x.ws.project, erroredState)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		ph.log.printf("%s is left by %s but cannot be read: %v", erroredState, x.job.Tool, err)
		return
	}
	if x.job.SaveState == nil {
		ph.log.printf("%s could not store the state and this run's state is not managed by Gantry: %s is removed with the workspace", x.job.Tool, erroredState)
		return
	}
	ph.log.printf("%s could not store the new state; the worker stores %s itself", x.job.Tool, erroredState)
	line, err := x.job.SaveState(x.reportCtx, ph.name, data)
	if err != nil {
		x.log.Error("could not store the errored state", "phase", ph.name, "err", err)
		ph.log.printf("%v", err)
		return
	}
	ph.log.printf("%s", line)
}

// runTool runs `<tool> <args>` in the project root.
func (x *execution) runTool(ctx context.Context, ph *phase, args ...string) (int, error) {
	return x.runCommand(ctx, ph.log, x.sb, x.toolCommand(ph, args...))
}

func (x *execution) toolCommand(ph *phase, args ...string) command {
	name := string(x.job.Tool)
	return command{
		name:    name + " " + args[0],
		prog:    name,
		args:    args,
		display: shellJoin(append([]string{name}, args...)...),
		dir:     x.ws.project, env: ph.env,
	}
}

// toolFailure is commandFailure for `<tool> <sub>`.
func (x *execution) toolFailure(ph *phase, sub string, code int, err error) *failure {
	return x.commandFailure(ph, x.toolCommand(ph, sub), code, err)
}
