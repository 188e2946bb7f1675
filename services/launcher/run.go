package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/commands"
	"github.com/gantryhq/gantry/services/executor"
	"github.com/gantryhq/gantry/services/gateway"
	"github.com/gantryhq/gantry/services/scheduler"
	"github.com/gantryhq/gantry/services/seal"
	"github.com/gantryhq/gantry/services/statebackend"
)

// execute runs one assigned run to its end and reports it. The run's
// context is its own: a launcher told to stop lets its run go on for the
// grace period (leave), then fails it through the assignment's fail.
func (l *Launcher) execute(a scheduler.Assignment) {
	log := l.log.With("run_id", a.RunID, "stack_id", a.StackID)
	l.mu.Lock()
	l.current = &assignment{runID: a.RunID}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.current = nil
		l.mu.Unlock()
	}()
	runCtx, fail := context.WithCancelCause(context.Background())
	defer fail(nil)
	reportCtx := context.Background()

	job, err := l.job(reportCtx, a)
	if err != nil {
		log.Error("could not prepare the run", "err", err)
		l.endRun(reportCtx, a.RunID, gateway.KindRunFailed, "the worker could not prepare the run: "+err.Error())
		return
	}
	rep := &reporter{l: l, runID: a.RunID, stackID: job.StackID, autodeploy: job.Autodeploy, typ: job.Type}
	exe, err := l.exec.Start(runCtx, job, rep)
	if err != nil {
		log.Error("the run was refused by the executor", "err", err)
		l.endRun(reportCtx, a.RunID, gateway.KindRunFailed, "the worker refused the run: "+err.Error())
		return
	}
	l.mu.Lock()
	if l.current != nil {
		l.current.stop = exe.Stop
		l.current.fail = fail
	}
	l.mu.Unlock()
	res := exe.Wait()
	log.Info("run done on this worker", "status", res.Status, "note", res.Note)
	if rep.ended {
		return // the last phase's result ended the run (or left it UNCONFIRMED)
	}
	switch res.Status {
	case run.Finished:
		l.endRun(reportCtx, a.RunID, gateway.KindRunFinished, "")
	case run.Stopped:
		l.endRun(reportCtx, a.RunID, gateway.KindRunStopped, res.Note)
	case run.Unconfirmed:
		// Recorded by the planning phase's result.
	default:
		note := res.Note
		if note == "" {
			note = "the run failed on the worker"
		}
		l.endRun(reportCtx, a.RunID, gateway.KindRunFailed, note)
	}
}

// endRun reports the end of a run the phase results did not end.
func (l *Launcher) endRun(ctx context.Context, runID, kind, note string) {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if err := l.request(ctx, kind, gateway.RunReport{WorkerID: l.WorkerID(), RunID: runID, Note: note}, nil); err != nil {
		l.log.Error("could not report the end of the run", "run_id", runID, "kind", kind, "err", err)
	}
}

// job asks the server for the run's job and turns it into the executor's,
// opening the sealed secrets with the pool's key.
func (l *Launcher) job(ctx context.Context, a scheduler.Assignment) (executor.Job, error) {
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	var reply gateway.Reply
	if err := l.request(rctx, gateway.KindRunJob, gateway.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID}, &reply); err != nil {
		return executor.Job{}, err
	}
	j := reply.Job
	if j == nil {
		return executor.Job{}, errors.New("the server sent no job")
	}
	job := executor.Job{
		RunID: j.RunID, StackID: j.StackID, Type: j.Type, Confirmed: j.Confirmed, Autodeploy: j.Autodeploy,
		RepositoryURL: j.RepositoryURL, Commit: j.Commit, ProjectRoot: j.ProjectRoot, Tool: j.Tool, Hooks: j.Hooks,
		TaskCommand: j.TaskCommand, Whitelist: l.cfg.Whitelist, MaskNames: l.cfg.MaskNames, Debug: l.cfg.Debug,
	}
	for _, v := range j.Env {
		ev, err := l.variable(v)
		if err != nil {
			return executor.Job{}, err
		}
		job.Env = append(job.Env, ev)
	}
	if j.ManagedState {
		// Credentials go to each phase through the environment; see
		// statebackend.OverrideFile for why not into the file.
		job.BackendOverride = statebackend.OverrideFile(l.cfg.Token.ServerURL, j.StackID, statebackend.Credentials{})
		job.PhaseEnv = func(ctx context.Context, phase run.Phase) ([]executor.Variable, error) {
			return l.stateCredentials(ctx, j.RunID, phase)
		}
	}
	return job, nil
}

// variable opens a job variable.
func (l *Launcher) variable(v commands.JobVariable) (executor.Variable, error) {
	if !v.Secret() {
		return executor.Variable{Name: v.Name, Value: v.Value, Scope: v.Scope}, nil
	}
	plain, err := seal.Open(l.cfg.PoolKey, v.Sealed)
	if err != nil {
		return executor.Variable{}, fmt.Errorf("open the secret variable %s: %w", v.Name, err)
	}
	return executor.Variable{Name: v.Name, Value: string(plain), Scope: v.Scope, Secret: true}, nil
}

// stateCredentials asks for the managed-state credentials of the run's
// current phase and returns them as the http backend's variables.
func (l *Launcher) stateCredentials(ctx context.Context, runID string, phase run.Phase) ([]executor.Variable, error) {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	var reply gateway.Reply
	if err := l.request(ctx, gateway.KindPhaseCredentials, gateway.PhaseStartedReport{WorkerID: l.WorkerID(), RunID: runID, Phase: phase}, &reply); err != nil {
		return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	if reply.StateCredentials == nil {
		return nil, nil
	}
	plain, err := seal.Open(l.cfg.PoolKey, reply.StateCredentials)
	if err != nil {
		return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	var c commands.StateCredentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	return []executor.Variable{
		{Name: "TF_HTTP_USERNAME", Value: c.Username},
		{Name: "TF_HTTP_PASSWORD", Value: c.Password, Secret: true},
	}, nil
}

// reporter turns the executor's progress into reports, log messages and
// stored phase logs.
type reporter struct {
	l          *Launcher
	runID      string
	stackID    string
	typ        run.Type
	autodeploy bool
	// ended: a phase result ended the run or left it UNCONFIRMED; nothing
	// more is reported.
	ended bool
	// publishFailed: live log lines could not be published; the stored
	// phase log still has them. Logged once.
	publishFailed bool
}

// PhaseStarted implements executor.Reporter.
func (r *reporter) PhaseStarted(ctx context.Context, phase run.Phase, _ time.Time) error {
	if phase == run.PhaseApplying && r.typ == run.Tracked && r.autodeploy {
		return nil // the domain started APPLYING when PLANNING found changes
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	err := r.l.request(ctx, gateway.KindPhaseStarted, gateway.PhaseStartedReport{WorkerID: r.l.WorkerID(), RunID: r.runID, Phase: phase}, nil)
	var re *ReportError
	if errors.As(err, &re) && re.Code == gateway.CodeStopRequested {
		return fmt.Errorf("%s not started: %w", phase, executor.ErrStopRequested)
	}
	return err
}

// PhaseFinished implements executor.Reporter: the phase's lines are
// published and its full log stored before its result is reported, so
// that a reader who sees the result finds the whole log.
func (r *reporter) PhaseFinished(ctx context.Context, res executor.PhaseResult) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	select {
	case <-r.l.js.PublishAsyncComplete():
	case <-ctx.Done():
		r.l.log.Warn("live log lines not acknowledged", "run_id", r.runID, "phase", res.Phase)
	}
	if err := r.l.uploads.StorePhaseLog(ctx, r.runID, res.Phase, res.Log); err != nil {
		r.l.log.Error("could not store the phase log", "run_id", r.runID, "phase", res.Phase, "err", err)
	}
	var reply gateway.Reply
	err := r.l.request(ctx, gateway.KindPhaseFinished, gateway.PhaseFinishedReport{
		WorkerID: r.l.WorkerID(), RunID: r.runID, Phase: res.Phase, ExitCode: res.ExitCode,
		DurationMS: res.Duration.Milliseconds(), HasChanges: res.HasChanges, Note: res.Note,
	}, &reply)
	if err != nil {
		var re *ReportError
		if errors.As(err, &re) {
			// The run has moved on without this worker (stopped, lost,
			// failed): there is nothing more to report.
			r.ended = true
		}
		return err
	}
	if reply.RunStatus.Terminal() || reply.RunStatus == run.Unconfirmed {
		r.ended = true
	}
	return nil
}

// Log implements executor.Reporter.
func (r *reporter) Log(phase run.Phase, line string) {
	r.l.publishLine(r.runID, r.stackID, phase, line, &r.publishFailed)
}
