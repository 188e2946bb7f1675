package executor

import (
	"context"
	"path"

	"github.com/gantryhq/gantry/domain/run"
)

// prepare is PREPARING: a fresh workspace, the checkout at the run's commit,
// the project root, the backend override, the workspace manifest and the
// stack's mounted files.
func (x *execution) prepare(ctx context.Context, ph *phase) *failure {
	ws, err := x.backend.newWorkspace(x.job.RunID)
	if err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	x.ws = ws
	if x.tools, err = x.findTools(true); err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	if f := x.checkout(ctx, ph); f != nil {
		return f
	}
	if err := writeManifest(ws.work, x.job); err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	if f := x.enterProject(ph); f != nil {
		return f
	}
	if f := x.mountFiles(ph); f != nil {
		return f
	}
	return x.openSandbox(ctx, ph, firstCommandPhase(x.job))
}

// restore is PREPARING_APPLY: a fresh workspace holding the workspace the
// planning worker saved, decrypted with the pool's key.
func (x *execution) restore(ctx context.Context, ph *phase) *failure {
	ws, err := x.backend.newWorkspace(x.job.RunID)
	if err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	x.ws = ws
	if x.tools, err = x.findTools(false); err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	ph.log.printf("Restoring the saved workspace of run %s", x.job.RunID)
	r, err := x.cfg.Workspaces.Open(ctx, x.job.RunID)
	if err != nil {
		return x.ctxFailure(ctx, ph, "open the saved workspace: %v", err)
	}
	err = RestoreWorkspace(ctx, r, x.cfg.PoolKey, ws.work)
	r.Close()
	if err != nil {
		return x.ctxFailure(ctx, ph, "restore the saved workspace: %v", err)
	}
	if err := checkManifest(ws.work, x.job); err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	if f := x.enterProject(ph); f != nil {
		return f
	}
	return x.openSandbox(ctx, ph, firstCommandPhase(x.job))
}

// firstCommandPhase is the first phase of j that runs commands.
func firstCommandPhase(j Job) run.Phase {
	switch {
	case j.Confirmed:
		return run.PhaseApplying
	default:
		return run.PhaseInitializing
	}
}

// openSandbox opens the sandbox of the commands of phase p, or keeps the
// one open when it serves p's scope too. A sandbox that cannot be had fails
// the phase.
func (x *execution) openSandbox(ctx context.Context, ph *phase, p run.Phase) *failure {
	write := WritePhase(x.job.Type, p)
	if x.sb != nil && (write == x.sbWrite || x.backend.sameSandbox()) {
		return nil
	}
	if x.sb != nil {
		x.sb.close()
		x.sb = nil
	}
	sb, err := x.backend.open(ctx, x, write)
	if err != nil {
		return x.ctxFailure(ctx, ph, "%v", err)
	}
	x.sb, x.sbWrite = sb, write
	return nil
}

// closeSandboxes ends whatever still runs in the run's sandboxes.
func (x *execution) closeSandboxes() {
	if x.sb != nil {
		x.sb.close()
	}
	if x.hostSB != nil {
		x.hostSB.close()
	}
}

// enterProject enters the project root of the checkout and writes the
// backend override there.
func (x *execution) enterProject(ph *phase) *failure {
	if err := x.ws.enterProjectRoot(x.job.ProjectRoot); err != nil {
		return x.fail(ph, ExitNoProcess, "%v", err)
	}
	if x.job.BackendOverride != nil {
		if err := x.ws.writeOverride(x.job.BackendOverride); err != nil {
			return x.fail(ph, ExitNoProcess, "%v", err)
		}
		root, _ := cleanProjectRoot(x.job.ProjectRoot)
		ph.log.printf("Wrote the backend override %s", path.Join(root, OverrideFile))
	}
	return nil
}

// ctxFailure is the failure of work done in the executor itself: an
// interruption when ctx ended (the error is then a consequence), a failure
// with the message otherwise.
func (x *execution) ctxFailure(ctx context.Context, ph *phase, format string, args ...any) *failure {
	if ctx.Err() != nil {
		i := x.interruption(ctx)
		ph.log.printf("%s", i.note)
		return interrupted(i, ExitNoProcess)
	}
	return x.fail(ph, ExitNoProcess, format, args...)
}
