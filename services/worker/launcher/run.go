package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/seal"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// execute runs one assigned run to its end and reports it. The run's
// context is its own: a launcher told to stop lets its run go on for the
// grace period (leave), then fails it through the assignment's fail.
func (l *Launcher) execute(a protocol.Assignment, parent trace.SpanContext) {
	log := l.logger().With("run_id", a.RunID, "stack_id", a.StackID)
	traced := context.Background()
	if parent.IsValid() {
		traced = trace.ContextWithRemoteSpanContext(traced, parent)
	}
	traced, span := l.tracer.Start(traced, "launcher.run", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("gantry.run_id", a.RunID), attribute.String("gantry.worker_id", l.WorkerID())))
	defer span.End()
	l.mu.Lock()
	l.current = &assignment{runID: a.RunID}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.current = nil
		l.mu.Unlock()
	}()
	// Reports and the executor's callbacks carry the run's span, so that
	// the gateway continues its trace.
	runCtx, fail := context.WithCancelCause(traced)
	defer fail(nil)
	reportCtx := traced

	job, err := l.job(reportCtx, a)
	if err != nil {
		log.Error("could not prepare the run", "err", err)
		l.endRun(reportCtx, protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker could not prepare the run: " + err.Error()})
		return
	}
	if note := l.admit(reportCtx, job); note != "" {
		l.endRun(reportCtx, protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: note})
		return
	}
	rep := &reporter{l: l, runID: a.RunID, stackID: job.StackID, autodeploy: job.Autodeploy, typ: job.Type,
		credentials: map[run.Phase][]byte{}, stateURL: l.cfg.Token.ServerURL}
	if job.BackendOverride != nil {
		job.PhaseEnv = rep.phaseEnv
		if gw := l.exec.GatewayAddress(); gw != "" {
			// The run's containers cannot count on reaching the server's
			// address (127.0.0.1 under gantry dev): they reach the state
			// through the launcher, at their network's gateway.
			proxy, err := startStateProxy(gw, l.cfg.Token.ServerURL, job.StackID, log)
			if err != nil {
				log.Error("could not serve the run's state to its containers", "err", err)
				l.endRun(reportCtx, protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker could not serve the run's state to its container: " + err.Error()})
				return
			}
			defer proxy.Close()
			rep.stateURL = proxy.URL
		}
	}
	exe, err := l.exec.Start(runCtx, job, rep)
	if err != nil {
		log.Error("the run was refused by the executor", "err", err)
		l.endRun(reportCtx, protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker refused the run: " + err.Error()})
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
	span.SetAttributes(attribute.String("gantry.run_status", string(res.Status)))
	var last *protocol.PhaseFinishedReport
	if res.Status == run.Finished && rep.held != nil && (rep.held.Phase.Applies() || rep.held.Phase == run.PhasePerforming) {
		last, rep.held = rep.held, nil
	}
	rep.flush(reportCtx)
	if rep.ended {
		return // the last phase's result ended the run (or left it UNCONFIRMED)
	}
	switch res.Status {
	case run.Finished:
		l.endRun(reportCtx, protocol.KindRunFinished, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Finished: last})
	case run.Stopped:
		l.endRun(reportCtx, protocol.KindRunStopped, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: res.Note})
	case run.Unconfirmed:
		// Recorded by the planning phase's result.
	default:
		note := res.Note
		if note == "" {
			note = "the run failed on the worker"
		}
		l.endRun(reportCtx, protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: note})
	}
}

// endRun reports the end of a run the phase results did not end.
func (l *Launcher) endRun(ctx context.Context, kind string, report protocol.RunReport) {
	ctx, cancel := context.WithTimeout(ctx, resultTimeout)
	defer cancel()
	if err := l.request(ctx, kind, report, nil); err != nil {
		l.logger().Error("could not report the end of the run", "run_id", report.RunID, "kind", kind, "err", err)
	}
}

// job asks the server for the run's job and hands it to the executor as
// it came, beside this launcher's settings, with the sealed secrets opened
// with the pool's key.
func (l *Launcher) job(ctx context.Context, a protocol.Assignment) (executor.Job, error) {
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	var reply protocol.Reply
	if err := l.request(rctx, protocol.KindRunJob, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID}, &reply); err != nil {
		return executor.Job{}, err
	}
	if reply.Job == nil {
		return executor.Job{}, errors.New("the server sent no job")
	}
	job := executor.Job{Job: *reply.Job, Whitelist: l.cfg.Whitelist, MaskNames: l.cfg.MaskNames, Debug: l.cfg.Debug, WorkerID: l.WorkerID()}
	if sealed := reply.Job.GitCredentials; sealed != nil {
		plain, err := seal.Open(l.cfg.PoolKey, sealed)
		if err != nil {
			return executor.Job{}, fmt.Errorf("open the git credentials: %w", err)
		}
		job.Git = &protocol.GitCredentials{}
		if err := json.Unmarshal(plain, job.Git); err != nil {
			return executor.Job{}, fmt.Errorf("open the git credentials: %w", err)
		}
	}
	for _, v := range reply.Job.Env {
		ev, err := l.variable(v)
		if err != nil {
			return executor.Job{}, err
		}
		job.Env = append(job.Env, ev)
	}
	for _, f := range reply.Job.Files {
		content, err := seal.Open(l.cfg.PoolKey, f.Sealed)
		if err != nil {
			return executor.Job{}, fmt.Errorf("open the mounted file %s: %w", f.Path, err)
		}
		job.Files = append(job.Files, executor.MountedFile{Path: f.Path, Content: content})
	}
	key, err := l.outputsKey(reply.Job.OutputsKey)
	if err != nil {
		return executor.Job{}, err
	}
	job.OutputsKey = key
	if job.ManagedState {
		// Credentials and addresses go to each phase through the
		// environment (see tfbackend.OverrideFile for why not into the
		// file): the reporter's phaseEnv.
		job.BackendOverride = tfbackend.OverrideFile("", job.StackID, tfbackend.Credentials{})
	}
	return job, nil
}

// variable opens a job variable.
func (l *Launcher) variable(v protocol.Variable) (executor.Variable, error) {
	if !v.Secret() {
		return executor.Variable{Name: v.Name, Value: v.Value, Scope: v.Scope}, nil
	}
	plain, err := seal.Open(l.cfg.PoolKey, v.Sealed)
	if err != nil {
		return executor.Variable{}, fmt.Errorf("open the secret variable %s: %w", v.Name, err)
	}
	return executor.Variable{Name: v.Name, Value: string(plain), Scope: v.Scope, Secret: true}, nil
}

// phaseEnv returns the managed-state credentials of the run's current
// phase as the http backend's variables: those that came with the answer
// to phase.started, or, for a phase the domain started by itself, those
// phase.credentials returns.
func (r *reporter) phaseEnv(ctx context.Context, phase run.Phase) ([]executor.Variable, error) {
	sealed, answered := r.credentials[phase]
	if !answered {
		ctx, cancel := context.WithTimeout(ctx, reportTimeout)
		defer cancel()
		var reply protocol.Reply
		if err := r.l.request(ctx, protocol.KindPhaseCredentials, protocol.PhaseStartedReport{WorkerID: r.l.WorkerID(), RunID: r.runID, Phase: phase}, &reply); err != nil {
			return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
		}
		sealed = reply.StateCredentials
	}
	var vars []executor.Variable
	for name, value := range tfbackend.AddressVariables(r.stateURL, r.stackID) {
		vars = append(vars, executor.Variable{Name: name, Value: value})
	}
	if sealed == nil {
		return vars, nil
	}
	plain, err := seal.Open(r.l.cfg.PoolKey, sealed)
	if err != nil {
		return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	var c protocol.StateCredentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	return append(vars,
		executor.Variable{Name: "TF_HTTP_USERNAME", Value: c.Username},
		executor.Variable{Name: "TF_HTTP_PASSWORD", Value: c.Password, Secret: true},
	), nil
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
	// credentials are the sealed state credentials that came with the
	// answer to each phase.started (nil: none for that phase).
	credentials map[run.Phase][]byte
	// held is a phase result waiting to go with the next phase.started.
	held *protocol.PhaseFinishedReport
	// stateURL is where the run's processes reach the state backend: the
	// server, or the run's state proxy.
	stateURL string
}

// PhaseStarted implements executor.Reporter.
func (r *reporter) PhaseStarted(ctx context.Context, phase run.Phase, _ time.Time) error {
	if phase.Applies() && r.typ == run.Tracked && r.autodeploy {
		return nil // the domain started APPLYING (DESTROYING) when PLANNING found changes
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	var reply protocol.Reply
	err := r.l.request(ctx, protocol.KindPhaseStarted, protocol.PhaseStartedReport{
		WorkerID: r.l.WorkerID(), RunID: r.runID, Phase: phase, Finished: r.held}, &reply)
	var re *ReportError
	if errors.As(err, &re) && re.Code == protocol.CodeStopRequested {
		// Neither was recorded; the held result goes on its own (flush).
		return fmt.Errorf("%s not started: %w", phase, executor.ErrStopRequested)
	}
	if err == nil {
		r.held = nil
		r.credentials[phase] = reply.StateCredentials
	}
	return err
}

// PhaseFinished implements executor.Reporter: the phase's lines are
// published and its full log stored before its result is reported, so
// that a reader who sees the result finds the whole log. The result of a
// phase that succeeded and is not the planning one (whose result decides
// what comes next) is held and sent with the next report, phase.started or
// run.finished, as one append; execute sends a held result on its own if
// neither followed.
func (r *reporter) PhaseFinished(ctx context.Context, res executor.PhaseResult) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	stored := make(chan error, 1)
	go func() { stored <- r.l.uploads.StorePhaseLog(ctx, r.runID, res.Phase, res.Log) }()
	select {
	case <-r.l.js.PublishAsyncComplete():
	case <-ctx.Done():
		r.l.logger().Warn("live log lines not acknowledged", "run_id", r.runID, "phase", res.Phase)
	}
	if err := <-stored; err != nil {
		r.l.logger().Error("could not store the phase log", "run_id", r.runID, "phase", res.Phase, "err", err)
	}
	report := protocol.PhaseFinishedReport{
		WorkerID: r.l.WorkerID(), RunID: r.runID, Phase: res.Phase, ExitCode: res.ExitCode,
		DurationMS: res.Duration.Milliseconds(), HasChanges: res.HasChanges, Note: res.Note, Plan: res.Plan, Outputs: res.Outputs,
		ChangedResources: res.ChangedResources,
	}
	switch res.Phase {
	case run.PhasePreparing, run.PhaseInitializing, run.PhasePreparingApply, run.PhaseApplying, run.PhaseDestroying, run.PhasePerforming:
		if res.ExitCode == 0 {
			r.held = &report
			return nil
		}
	}
	return r.finish(ctx, report)
}

// finish reports a phase's result on its own.
func (r *reporter) finish(ctx context.Context, report protocol.PhaseFinishedReport) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resultTimeout)
	defer cancel()
	var reply protocol.Reply
	err := r.l.request(ctx, protocol.KindPhaseFinished, report, &reply)
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

// flush sends a held phase result that no phase.started carried: the run
// ended between phases (a stop, a failure before the next phase).
func (r *reporter) flush(ctx context.Context) {
	if r.held == nil {
		return
	}
	report := *r.held
	r.held = nil
	if err := r.finish(ctx, report); err != nil {
		r.l.logger().Error("could not report the phase's result", "run_id", r.runID, "phase", report.Phase, "err", err)
	}
}

// Log implements executor.Reporter.
func (r *reporter) Log(phase run.Phase, line string) {
	r.l.publishLine(r.runID, r.stackID, phase, line, &r.publishFailed)
}
