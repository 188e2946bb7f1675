package executor

import "github.com/gantryhq/gantry/domain/run"

// A destroy run (Job.Destroy) is a TRACKED run whose plan destroys every
// resource of the stack: it plans with -destroy, and the phase that applies
// the plan is DESTROYING instead of APPLYING. Everything else, the saved
// workspace of an UNCONFIRMED run included, is the same.

// applyPhase is the phase that applies the job's plan.
func (j Job) applyPhase() run.Phase {
	if j.Destroy {
		return run.PhaseDestroying
	}
	return run.PhaseApplying
}

// planArgs are the arguments of `<tool> plan`: into the workspace's plan
// file, exiting 2 when there are changes.
func (x *execution) planArgs() []string {
	args := []string{"plan", "-input=false", "-out=" + x.sb.path(x.ws.planFile), "-detailed-exitcode"}
	if x.job.Destroy {
		args = append(args, "-destroy")
	}
	return args
}
