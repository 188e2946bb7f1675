package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/seal"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

// execute runs one assigned run to its end and reports it. The run's
// context is its own: a launcher told to stop lets its run go on for the
// grace period (leave), then fails it through the assignment's fail (or
// hands it back, after a cycle). Every report of the run is repeated while
// the server does not accept it, until the run's timeout and resultTimeout
// have passed; those that record a result are kept in the worker's outbox
// meanwhile.
func (l *Launcher) execute(a protocol.Assignment, parent trace.SpanContext) {
	log := l.logger().With("run_id", a.RunID, "stack_id", a.StackID)
	traced := context.Background()
	if parent.IsValid() {
		traced = trace.ContextWithRemoteSpanContext(traced, parent)
	}
	traced, span := l.tracer.Start(traced, "launcher.run", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("gantry.run_id", a.RunID), attribute.String("gantry.worker_id", l.WorkerID())))
	defer span.End()
	deadline := time.Now().Add(l.runTimeout() + resultTimeout)
	l.mu.Lock()
	o := l.outbox
	l.current = &assignment{runID: a.RunID}
	l.hbRun = a.RunID
	l.mu.Unlock()
	if err := o.setRun(runMark{RunID: a.RunID, Deadline: deadline}); err != nil {
		log.Error("could not mark the run on disk", "err", err)
	}
	defer func() {
		// Every report of the run is answered or given up: the heartbeats
		// say the worker is done with it.
		if err := o.setRun(runMark{}); err != nil {
			log.Error("could not clear the run's mark on disk", "err", err)
		}
		l.mu.Lock()
		l.current, l.hbRun, l.hbSettled = nil, "", a.RunID
		l.mu.Unlock()
	}()
	// Reports and the executor's callbacks carry the run's span, so that
	// the gateway continues its trace.
	runCtx, fail := context.WithCancelCause(traced)
	defer fail(nil)
	reportCtx, cancelReports := context.WithDeadline(traced, deadline)
	defer cancelReports()
	end := func(kind string, report protocol.RunReport) {
		if err := l.deliver(reportCtx, o, kind, a.RunID, report, deadline, nil); err != nil {
			log.Error("could not report the end of the run", "kind", kind, "err", err)
		}
	}

	job, err := l.job(reportCtx, a)
	if err != nil {
		log.Error("could not prepare the run", "err", err)
		end(protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker could not prepare the run: " + err.Error()})
		return
	}
	if note := l.admit(reportCtx, job); note != "" {
		end(protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: note})
		return
	}
	rep := &reporter{l: l, runID: a.RunID, stackID: job.StackID, autodeploy: job.Autodeploy, typ: job.Type,
		credentials: map[run.Phase][]byte{}, opened: map[run.Phase]protocol.StateCredentials{}, stateURL: l.cfg.Token.ServerURL, outbox: o, deadline: deadline, userEnv: userEnv(job),
		live: &liveLog{l: l, runID: a.RunID, stackID: job.StackID}}
	defer rep.live.flush() // lines of a phase that ended without a result
	if job.BackendOverride != nil {
		job.PhaseEnv = rep.phaseEnv
		job.SaveState = rep.saveState
		job.ReadState = rep.readState
		if gw := l.exec.GatewayAddress(); gw != "" {
			// The run's containers cannot count on reaching the server's
			// address (127.0.0.1 under gantry dev): they reach the state
			// through the launcher, at their network's gateway.
			proxy, err := startStateProxy(gw, l.cfg.Token.ServerURL, job.StackID, log)
			if err != nil {
				log.Error("could not serve the run's state to its containers", "err", err)
				end(protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker could not serve the run's state to its container: " + err.Error()})
				return
			}
			defer proxy.Close()
			rep.stateURL = proxy.URL
		}
	}
	exe, err := l.exec.Start(runCtx, job, rep)
	if err != nil {
		log.Error("the run was refused by the executor", "err", err)
		end(protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker refused the run: " + err.Error()})
		return
	}
	l.mu.Lock()
	if l.current != nil {
		l.current.stop = exe.Stop
		l.current.fail = fail
		l.current.handBack = func() bool { return rep.handBack(fail) }
	}
	l.mu.Unlock()
	res := exe.Wait()
	log.Info("run done on this worker", "status", res.Status, "note", res.Note)
	span.SetAttributes(attribute.String("gantry.run_status", string(res.Status)))
	if rep.handingBack() {
		err := l.deliver(reportCtx, o, protocol.KindRunHandedBack, a.RunID,
			protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker pool was cycled before the run changed anything"}, deadline, nil)
		var re *ReportError
		if errors.As(err, &re) && re.Code != protocol.CodeInternal {
			// It moved on meanwhile (its plan's result started the apply).
			end(protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: "the worker pool was cycled"})
		}
		return
	}
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
		end(protocol.KindRunFinished, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Finished: last})
	case run.Stopped:
		end(protocol.KindRunStopped, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: res.Note})
	case run.Unconfirmed:
		// Recorded by the planning phase's result.
	default:
		note := res.Note
		if note == "" {
			note = "the run failed on the worker"
		}
		end(protocol.KindRunFailed, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID, Note: note})
	}
}

// runTimeout is the executor's run timeout.
func (l *Launcher) runTimeout() time.Duration {
	if t := l.cfg.Executor.RunTimeout; t > 0 {
		return t
	}
	return executor.DefaultRunTimeout
}

// job asks the server for the run's job and hands it to the executor as
// it came, beside this launcher's settings, with the sealed secrets opened
// with the pool's key.
func (l *Launcher) job(ctx context.Context, a protocol.Assignment) (executor.Job, error) {
	var reply protocol.Reply
	if err := l.request(ctx, protocol.KindRunJob, protocol.RunReport{WorkerID: l.WorkerID(), RunID: a.RunID}, &reply); err != nil {
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
		ctx, cancel := context.WithDeadline(ctx, r.deadline)
		defer cancel()
		var reply protocol.Reply
		if err := r.l.request(ctx, protocol.KindPhaseCredentials, protocol.PhaseStartedReport{WorkerID: r.l.WorkerID(), RunID: r.runID, Phase: phase}, &reply); err != nil {
			return nil, fmt.Errorf("state credentials for %s: %w", phase, err)
		}
		sealed = reply.StateCredentials
		r.credentials[phase] = sealed
	}
	var vars []executor.Variable
	for name, value := range tfbackend.AddressVariables(r.stateURL, r.stackID) {
		vars = append(vars, executor.Variable{Name: name, Value: value})
	}
	// Terraform's own retries of a state request outlast a server restart;
	// a stack's variables of the same names win.
	for name, value := range tfbackend.RetryVariables() {
		if !r.userEnv[name] {
			vars = append(vars, executor.Variable{Name: name, Value: value})
		}
	}
	if sealed == nil {
		return vars, nil
	}
	c, err := r.stateCredentials(phase)
	if err != nil {
		return nil, err
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
	// live sends the phases' lines out as they come.
	live *liveLog
	// credentials are the sealed state credentials that came with the
	// answer to each phase.started (nil: none for that phase).
	credentials map[run.Phase][]byte
	// opened are the credentials of each phase once opened: opening is a
	// private key operation, done once per phase, not again for each
	// read or write of the state the phase makes itself.
	opened map[run.Phase]protocol.StateCredentials
	// held is a phase result waiting to go with the next phase.started.
	held *protocol.PhaseFinishedReport
	// stateURL is where the run's processes reach the state backend: the
	// server, or the run's state proxy.
	stateURL string
	// outbox keeps the reports that record a result until answered, and
	// deadline is when the run's reports are given up.
	outbox   *outbox
	deadline time.Time
	// userEnv names the variables the stack or the launcher's whitelist
	// set for the run.
	userEnv map[string]bool

	mu    sync.Mutex
	phase run.Phase // the phase under way
	// back: the run is being handed back; nothing more is reported of it
	// but that.
	back bool
}

// userEnv names the variables the job sets of its own.
func userEnv(job executor.Job) map[string]bool {
	names := map[string]bool{}
	for _, v := range append(slices.Clone(job.Env), job.Whitelist...) {
		names[v.Name] = true
	}
	return names
}

// handBack stops the run to hand it back, if it has not reached a phase
// that may change infrastructure, and reports whether it did.
func (r *reporter) handBack(fail context.CancelCauseFunc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.phase {
	case run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning, run.PhasePreparingApply:
	default:
		return false
	}
	r.back = true
	fail(errHandedBack)
	return true
}

// handingBack reports whether the run is being handed back.
func (r *reporter) handingBack() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.back
}

// PhaseStarted implements executor.Reporter.
func (r *reporter) PhaseStarted(ctx context.Context, phase run.Phase, _ time.Time) error {
	r.mu.Lock()
	back := r.back
	if !back {
		r.phase = phase
	}
	r.mu.Unlock()
	if back {
		return fmt.Errorf("%s not started: %w", phase, errHandedBack)
	}
	if phase.Applies() && r.typ == run.Tracked && r.autodeploy {
		return nil // the domain started APPLYING (DESTROYING) when PLANNING found changes
	}
	ctx, cancel := context.WithDeadline(ctx, r.deadline)
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
		delete(r.opened, phase)
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
	ctx, cancel := context.WithDeadline(ctx, r.deadline)
	defer cancel()
	stored := make(chan error, 1)
	go func() { stored <- r.storePhaseLog(ctx, res.Phase, res.Log) }()
	r.live.flush()
	select {
	case <-r.l.js.PublishAsyncComplete():
	case <-ctx.Done():
		r.l.logger().Warn("live log lines not acknowledged", "run_id", r.runID, "phase", res.Phase)
	}
	if err := <-stored; err != nil {
		r.l.logger().Error("could not store the phase log", "run_id", r.runID, "phase", res.Phase, "err", err)
	}
	if r.handingBack() {
		return nil // the run goes back to the queue: its phase has no result
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

// storePhaseLog stores a phase's full log through the worker API, trying
// again, backing off as reports do, while the server cannot take it (it is
// restarting, its database is down): the log is stored before the phase's
// result is reported, so that a reader who sees the result finds it.
func (r *reporter) storePhaseLog(ctx context.Context, phase run.Phase, log []byte) error {
	pauses := &backoff.ExponentialBackOff{InitialInterval: retryFirst, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: retryLongest}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := r.l.uploads.StorePhaseLog(ctx, r.runID, phase, log)
		var status *workerclient.StatusError
		if errors.As(err, &status) && status.Code < 500 && status.Code != http.StatusTooManyRequests {
			return struct{}{}, backoff.Permanent(err) // refused, not failed: trying again changes nothing
		}
		return struct{}{}, err
	}, backoff.WithBackOff(pauses), backoff.WithMaxElapsedTime(0))
	return err
}

// finish reports a phase's result on its own, kept in the outbox until
// answered.
func (r *reporter) finish(ctx context.Context, report protocol.PhaseFinishedReport) error {
	var reply protocol.Reply
	err := r.l.deliver(context.WithoutCancel(ctx), r.outbox, protocol.KindPhaseFinished, r.runID, report, r.deadline, &reply)
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
	if r.held == nil || r.handingBack() {
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
	r.live.add(phase, line)
}
