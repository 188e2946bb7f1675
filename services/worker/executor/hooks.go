package executor

import (
	"context"
	"fmt"
)

// hooks runs the commands of one hook list (before_plan, …) in order with
// sh -c in the project root, in the phase's environment. The first that
// fails fails the phase; its output is already in the log.
func (x *execution) hooks(ctx context.Context, ph *phase, list string, cmds []string) *failure {
	for i, script := range cmds {
		c := command{
			name:    fmt.Sprintf("%s hook #%d", list, i+1),
			prog:    "sh",
			args:    []string{"-c", script},
			display: shellJoin("sh", "-c", script),
			dir:     x.ws.project, env: ph.env,
		}
		code, err := x.runCommand(ctx, ph.log, x.sb, c)
		if f := x.commandFailure(ph, c, code, err); f != nil {
			return f
		}
	}
	return nil
}

// afterRun ends the run in phase ph: it runs the after_run hooks unless the
// run was interrupted, and returns the run's failure, f or the hooks', or nil.
func (x *execution) afterRun(ctx context.Context, ph *phase, f *failure) *failure {
	if f != nil && f.interrupted {
		return f
	}
	hf := x.hooks(ctx, ph, "after_run", x.job.Hooks.AfterRun)
	if f != nil {
		return f
	}
	return hf
}
