package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// The commands of this file are what workers report (through the gateway)
// and what the gateway decides about workers on its own (a lost worker).
// Each takes the pool the report came from, accepts a report only from a
// live worker of that pool and, for a run, only from the worker the run is
// assigned to. Unlike the API's commands they do not wait for the read
// models: nobody reads their effect back right away.

// ErrNotYourRun is matched by the refusal of a report on a run that is not
// assigned to the reporting worker.
var ErrNotYourRun = errors.New("not the reporting worker's run")

// RefusedError is a worker report the command layer refused; Err says why
// and matches one of *domain.ValidationError (a malformed id or a value the
// domain rejects), domain.ErrNotFound (no such worker in the pool, or no
// such run), ErrNotYourRun, run.ErrIllegalTransition (the run's lifecycle
// forbids the report now), worker.ErrGone (the worker was lost or exited)
// or domain.ErrAlreadyExists (the worker id is taken); for AssignRun also
// ErrRunNotWaiting, ErrRunMoved or ErrWorkerNotIdle. Any other error of a
// worker command is a failure, not a refusal: retrying may help.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

func refused(err error) error { return &RefusedError{Err: err} }

// WorkerRegistration is what a worker registers with.
type WorkerRegistration struct {
	// WorkerID is generated when empty.
	WorkerID string
	Metadata map[string]string
	// Version is the launcher's version.
	Version string
	// Before, when set, runs once the domain accepted the registration and
	// before it is appended, with the worker id and the registration time;
	// an error stops the registration. The gateway starts the worker's
	// heartbeat clock there, so that no worker exists without one.
	Before func(ctx context.Context, workerID string, at time.Time) error
}

// RegisterWorker registers a new worker of pool and returns its id. A taken
// id is refused (domain.ErrAlreadyExists).
func (s *Service) RegisterWorker(ctx context.Context, poolID string, r WorkerRegistration) (string, error) {
	id := r.WorkerID
	if id == "" {
		var err error
		if id, err = newID(ids.Worker); err != nil {
			return "", err
		}
	} else if err := ids.Worker.Validate("worker_id", id); err != nil {
		return "", refused(err)
	}
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: id, CorrelationID: id})
	_, err := s.executeNoWait(ctx, "register worker", func(ctx context.Context, u *aggregate.Unit) error {
		at := s.now()
		w, err := workerOf(ctx, u, id)
		if err != nil {
			return err
		}
		if _, err := w.Do(worker.Register{WorkerID: id, PoolID: poolID, Metadata: r.Metadata, LauncherVersion: r.Version, Actor: id, At: at}); err != nil {
			return refused(err)
		}
		if r.Before != nil {
			return r.Before(ctx, id, at)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "worker registered", "pool_id", poolID, "worker_id", id, "metadata", len(r.Metadata), "launcher_version", r.Version)
	return id, nil
}

// StartPhase records that the worker began phase on its run.
func (s *Service) StartPhase(ctx context.Context, poolID, workerID, runID string, phase run.Phase) error {
	_, err := s.runReport(ctx, "start phase", poolID, workerID, runID, func(at time.Time) run.Command {
		return run.StartPhase{Phase: phase, Actor: workerID, At: at}
	})
	return err
}

// FinishAndStartPhase records the result of the worker's current phase and
// the start of the next one in one append: what a worker reports at a
// phase boundary where the run goes on. If the next phase cannot start
// (a stop was requested), neither is recorded.
func (s *Service) FinishAndStartPhase(ctx context.Context, poolID, workerID, runID string, p PhaseResult, next run.Phase) error {
	_, err := s.runReport(ctx, "finish and start phase", poolID, workerID, runID, append(p.commands(workerID), func(at time.Time) run.Command {
		return run.StartPhase{Phase: next, Actor: workerID, At: at}
	})...)
	var refusal *RefusedError
	if errors.As(err, &refusal) && errors.Is(err, run.ErrIllegalTransition) {
		// A pending stop ends the run with the phase's result, and the
		// start is then refused for the ended run; say why.
		if r, lerr := aggregate.Load(ctx, s.aggs, aggregate.Run, runID); lerr == nil {
			if _, stopping := r.StopRequested(); stopping {
				return refused(fmt.Errorf("run %s: %s not started: %w", runID, next, run.ErrStopPending))
			}
		}
	}
	return err
}

// PhaseResult is how a phase ended on the worker.
type PhaseResult struct {
	Phase      run.Phase
	ExitCode   int
	Duration   time.Duration
	HasChanges bool             // PLANNING only
	Note       string           // why a phase failed, when the worker knows more than the exit code
	Plan       *run.PlanSummary // PLANNING only: what the plan changes, when the worker could tell
	// ChangedResources are the addresses of the resources a plan with
	// changes would change: a drift run's DriftDetected records them.
	ChangedResources []string
	// Outputs are the run's outputs (APPLYING and PERFORMING), recorded
	// just before the result.
	Outputs []run.Output
}

// FinishPhase records the result of the current phase of the worker's run.
// When the result ends the run or leaves it UNCONFIRMED, the worker is
// freed (and the stack released) in the same append. It returns the run's
// status after the result: the worker knows from it whether the run ended.
func (s *Service) FinishPhase(ctx context.Context, poolID, workerID, runID string, p PhaseResult) (run.Status, error) {
	return s.runReportAfter(ctx, "finish phase", poolID, workerID, runID, &p, p.commands(workerID)...)
}

// commands are the domain commands recording p: its outputs, if any, then
// its result.
func (p PhaseResult) commands(workerID string) []func(at time.Time) run.Command {
	result := func(at time.Time) run.Command {
		return run.PhaseFinished{Phase: p.Phase, ExitCode: p.ExitCode, Duration: p.Duration, HasChanges: p.HasChanges, Note: p.Note, Plan: p.Plan, Actor: workerID, At: at}
	}
	if len(p.Outputs) == 0 {
		return []func(at time.Time) run.Command{result}
	}
	outputs := func(at time.Time) run.Command { return run.RecordOutputs{Outputs: p.Outputs, Actor: workerID, At: at} }
	return []func(at time.Time) run.Command{outputs, result}
}

// EndRun ends the worker's run as end: run.Finished (after the last phase
// and the after_* hooks), run.Failed (note required) or run.Stopped (after
// a stop request was carried out). The worker is freed and the stack lock
// handed on in the same append.
//
// last, if not nil, is the result of the run's last phase, recorded first
// in the same append: a run that ends after its phase succeeded costs one
// report, not two.
func (s *Service) EndRun(ctx context.Context, poolID, workerID, runID string, end run.Status, note string, last *PhaseResult) error {
	var command func(at time.Time) run.Command
	switch end {
	case run.Finished:
		command = func(at time.Time) run.Command { return run.Finish{Actor: workerID, At: at} }
	case run.Failed:
		command = func(at time.Time) run.Command { return run.Fail{Note: note, Actor: workerID, At: at} }
	case run.Stopped:
		command = func(at time.Time) run.Command { return run.MarkStopped{Note: note, Actor: workerID, At: at} }
	default:
		return refused(&domain.ValidationError{Field: "end", Problem: fmt.Sprintf("%q: want %s, %s or %s", end, run.Finished, run.Failed, run.Stopped)})
	}
	commands := []func(at time.Time) run.Command{command}
	if last != nil {
		commands = append(last.commands(workerID), command)
	}
	_, err := s.runReportAfter(ctx, "end run", poolID, workerID, runID, last, commands...)
	return err
}

// HandBackRun gives the worker's run back to the queue before it changed
// anything (its pool is cycled): READY, or CONFIRMED when it was preparing
// to apply; a run whose stop was requested ends STOPPED. The worker is
// freed in the same append; the stack lock stays with the run.
func (s *Service) HandBackRun(ctx context.Context, poolID, workerID, runID, note string) error {
	_, err := s.runReport(ctx, "hand back run", poolID, workerID, runID, func(at time.Time) run.Command {
		return run.HandBack{Note: note, Actor: workerID, At: at}
	})
	return err
}

// SettleDroppedRun fails run runID, which the server has in a phase on the
// live worker workerID of pool, when the worker says it is done with it
// and holds no report of its end (a launcher that gave up reporting it):
// the run would otherwise hold its worker and its stack lock for ever. It
// reports whether it failed the run; a run that ended meanwhile, moved on,
// or only waits for the worker to start it, is left alone.
func (s *Service) SettleDroppedRun(ctx context.Context, poolID, workerID, runID, note string) (bool, error) {
	if err := errors.Join(ids.Worker.Validate("worker_id", workerID), ids.Run.Validate("run_id", runID)); err != nil {
		return false, refused(err)
	}
	settled := false
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: workerID, CorrelationID: runID})
	_, err := s.executeNoWait(ctx, "settle dropped run", func(ctx context.Context, u *aggregate.Unit) error {
		at := s.now()
		settled = false
		w, err := liveWorker(ctx, u, poolID, workerID)
		if err != nil {
			return err
		}
		r, err := runOf(ctx, u, runID)
		if err != nil {
			return err
		}
		rs := r.State()
		if !rs.Exists() || rs.IsTerminal() || rs.WorkerID() != workerID || w.State().RunID() != runID ||
			rs.Status() == run.Ready || rs.Status() == run.Confirmed {
			return nil
		}
		if _, err := r.Do(run.Fail{Note: note, Actor: workerID, At: at}); err != nil {
			return fmt.Errorf("fail run %s: %w", runID, err)
		}
		settled = true
		return freeWorker(ctx, u, r, w, workerID, at)
	})
	if err != nil {
		return false, err
	}
	if settled {
		s.log.WarnContext(ctx, "run failed: its worker dropped it", "pool_id", poolID, "worker_id", workerID, "run_id", runID)
	}
	return settled, nil
}

// DeregisterWorker records that a worker of pool went away (its launcher
// shut down). A run it still held goes back to READY, or ends FAILED when a
// phase had started, in the same append.
func (s *Service) DeregisterWorker(ctx context.Context, poolID, workerID, note string) error {
	if err := ids.Worker.Validate("worker_id", workerID); err != nil {
		return refused(err)
	}
	var runID string
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: workerID, CorrelationID: workerID})
	_, err := s.executeNoWait(ctx, "deregister worker", func(ctx context.Context, u *aggregate.Unit) error {
		at := s.now()
		w, err := liveWorker(ctx, u, poolID, workerID)
		if err != nil {
			return err
		}
		runID = w.State().RunID()
		if _, err := w.Do(worker.Deregister{Note: note, Actor: workerID, At: at}); err != nil {
			return refused(err)
		}
		return abandonRun(ctx, u, workerID, runID, fmt.Sprintf("worker %s exited while running it", workerID), workerID, at)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "worker exited", "pool_id", poolID, "worker_id", workerID, "run_id", runID)
	return nil
}

// MarkWorkerLost marks a worker that stopped sending heartbeats lost, note
// saying why; its run goes back to READY, or ends FAILED when a phase had
// started. It reports false, and changes nothing, for a worker that never
// registered or is already gone. The pool is not checked: the caller (the
// gateway's sweep) decides this on its own, not on a worker's word.
func (s *Service) MarkWorkerLost(ctx context.Context, c Caller, workerID, note string) (bool, error) {
	if err := ids.Worker.Validate("worker_id", workerID); err != nil {
		return false, err
	}
	var runID string
	marked := false
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: c.Actor, CorrelationID: workerID})
	_, err := s.executeNoWait(ctx, "mark worker lost", func(ctx context.Context, u *aggregate.Unit) error {
		at := s.now()
		marked = false
		w, err := workerOf(ctx, u, workerID)
		if err != nil {
			return err
		}
		if !w.State().Exists() || w.State().Gone() {
			return nil // nothing to mark
		}
		runID = w.State().RunID()
		if _, err := w.Do(worker.MarkLost{Note: note, Actor: c.Actor, At: at}); err != nil {
			return fmt.Errorf("mark worker %s lost: %w", workerID, err)
		}
		marked = true
		return abandonRun(ctx, u, workerID, runID, fmt.Sprintf("worker %s was lost: %s", workerID, note), c.Actor, at)
	})
	if err != nil {
		return false, err
	}
	if marked {
		s.log.WarnContext(ctx, "worker lost", "worker_id", workerID, "run_id", runID, "note", note)
	}
	return marked, nil
}

// runReport decides the command a live worker of pool reports on its run,
// and frees the worker (and the stack) when the run ended, in one append.
func (s *Service) runReport(ctx context.Context, op, poolID, workerID, runID string, commands ...func(at time.Time) run.Command) (run.Status, error) {
	return s.runReportAfter(ctx, op, poolID, workerID, runID, nil, commands...)
}

// runReportAfter is runReport for a report that carries a phase's result
// (last, nil when none): the result of a drift run's plan records the
// drift it found in the same append (noteDrift).
func (s *Service) runReportAfter(ctx context.Context, op, poolID, workerID, runID string, last *PhaseResult, commands ...func(at time.Time) run.Command) (run.Status, error) {
	if err := errors.Join(ids.Worker.Validate("worker_id", workerID), ids.Run.Validate("run_id", runID)); err != nil {
		return "", refused(err)
	}
	var status run.Status
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: workerID, CorrelationID: runID})
	_, err := s.executeNoWait(ctx, op, func(ctx context.Context, u *aggregate.Unit) error {
		at := s.now()
		w, err := liveWorker(ctx, u, poolID, workerID)
		if err != nil {
			return err
		}
		r, err := runOf(ctx, u, runID)
		if err != nil {
			return err
		}
		if !r.State().Exists() {
			return refused(fmt.Errorf("no run %s: %w", runID, domain.ErrNotFound))
		}
		if r.State().WorkerID() != workerID || w.State().RunID() != runID {
			return refused(fmt.Errorf("run %s is not assigned to worker %s: %w", runID, workerID, ErrNotYourRun))
		}
		for _, command := range commands {
			if _, err := r.Do(command(at)); err != nil {
				return refused(err)
			}
		}
		status = r.State().Status()
		if err := noteDrift(ctx, u, r, last, workerID, at); err != nil {
			return err
		}
		return freeWorker(ctx, u, r, w, workerID, at)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, op, "pool_id", poolID, "worker_id", workerID, "run_id", runID, "status", string(status))
	return status, nil
}

// liveWorker loads a worker of pool that is not gone.
func liveWorker(ctx context.Context, u *aggregate.Unit, poolID, workerID string) (*workerAggregate, error) {
	w, err := workerOf(ctx, u, workerID)
	if err != nil {
		return nil, err
	}
	return w, checkLive(w.State(), poolID, workerID)
}

// checkLive refuses a worker that is not a live worker of pool.
func checkLive(w worker.State, poolID, workerID string) error {
	if !w.Exists() || w.PoolID() != poolID {
		return refused(fmt.Errorf("no worker %s in pool %s: %w", workerID, poolID, domain.ErrNotFound))
	}
	if w.Gone() {
		return refused(fmt.Errorf("worker %s is %s: %w", workerID, w.Status(), worker.ErrGone))
	}
	return nil
}

// freeWorker frees the worker of a run that a report ended, left
// UNCONFIRMED or handed back (the run holds no worker any more):
// worker.RunFinished, and for a terminal run the stack lock's release and
// hand-on.
func freeWorker(ctx context.Context, u *aggregate.Unit, r *runAggregate, w *workerAggregate, actor string, at time.Time) error {
	if r.State().WorkerID() == "" {
		if _, err := w.Do(worker.RunFinished{RunID: r.State().ID(), Actor: actor, At: at}); err != nil {
			return fmt.Errorf("free worker %s: %w", w.State().ID(), err)
		}
	}
	if r.State().IsTerminal() {
		return releaseStack(ctx, u, r, actor, at)
	}
	return nil
}

// abandonRun deals with the run of a worker that went away: back to READY
// (unassigned) when no phase had started on that worker, FAILED with note
// otherwise, releasing the stack.
func abandonRun(ctx context.Context, u *aggregate.Unit, workerID, runID, note, actor string, at time.Time) error {
	if runID == "" {
		return nil
	}
	r, err := runOf(ctx, u, runID)
	if err != nil {
		return err
	}
	if !r.State().Exists() || r.State().IsTerminal() || r.State().WorkerID() != workerID {
		return nil
	}
	switch r.State().Status() {
	case run.Ready, run.Confirmed:
		if _, err = r.Do(run.Unassign{Note: note, Actor: actor, At: at}); err == nil {
			err = endDriftRun(ctx, u, r, actor, at)
		}
	default:
		_, err = r.Do(run.Fail{Note: note, Actor: actor, At: at})
	}
	if err != nil {
		return fmt.Errorf("run %s of worker %s: %w", runID, workerID, err)
	}
	if r.State().IsTerminal() {
		return releaseStack(ctx, u, r, actor, at)
	}
	return nil
}
