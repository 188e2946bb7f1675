package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
)

// report serves one report of pool (taken from the subject).
func (g *Gateway) report(ctx context.Context, pool, kind string, data []byte) (Reply, error) {
	switch kind {
	case KindRegister:
		var b RegisterReport
		if err := decodeBody(data, &b); err != nil {
			return Reply{}, err
		}
		id, err := g.register(ctx, pool, b)
		return Reply{WorkerID: id}, err
	case KindPhaseStarted:
		var b PhaseStartedReport
		if err := decodeBody(data, &b); err != nil {
			return Reply{}, err
		}
		return Reply{}, g.runReport(ctx, pool, kind, b.WorkerID, b.RunID, func(at time.Time) run.Command {
			return run.StartPhase{Phase: b.Phase, Actor: b.WorkerID, At: at}
		})
	case KindPhaseFinished:
		var b PhaseFinishedReport
		if err := decodeBody(data, &b); err != nil {
			return Reply{}, err
		}
		return Reply{}, g.runReport(ctx, pool, kind, b.WorkerID, b.RunID, func(at time.Time) run.Command {
			return run.PhaseFinished{Phase: b.Phase, ExitCode: b.ExitCode, Duration: time.Duration(b.DurationMS) * time.Millisecond,
				HasChanges: b.HasChanges, Actor: b.WorkerID, At: at}
		})
	case KindRunFinished, KindRunFailed, KindRunStopped:
		var b RunReport
		if err := decodeBody(data, &b); err != nil {
			return Reply{}, err
		}
		return Reply{}, g.runReport(ctx, pool, kind, b.WorkerID, b.RunID, func(at time.Time) run.Command {
			switch kind {
			case KindRunFinished:
				return run.Finish{Actor: b.WorkerID, At: at}
			case KindRunFailed:
				return run.Fail{Note: b.Note, Actor: b.WorkerID, At: at}
			}
			return run.MarkStopped{Note: b.Note, Actor: b.WorkerID, At: at}
		})
	case KindExit:
		var b ExitReport
		if err := decodeBody(data, &b); err != nil {
			return Reply{}, err
		}
		return Reply{}, g.exit(ctx, pool, b)
	}
	return Reply{}, &replyError{code: CodeInvalid, msg: fmt.Sprintf("unknown report kind %q", kind)}
}

// register appends WorkerRegistered for a new worker of pool, and starts
// its heartbeat clock.
func (g *Gateway) register(ctx context.Context, pool string, b RegisterReport) (string, error) {
	id := b.WorkerID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("new worker id: %w", err)
		}
		id = string(ids.Worker) + "_" + hex.EncodeToString(u[:])
	}
	at := g.now()
	events, err := worker.Decide(worker.State{}, worker.Register{WorkerID: id, PoolID: pool, Metadata: b.Metadata, Actor: id, At: at})
	if err != nil {
		return "", domainError(err)
	}
	// The row comes first: a worker must never exist without one, or it
	// could not be found lost. A row left by a failed append names no
	// worker and is dropped by the next sweep.
	if _, err := g.cfg.Pool.Exec(ctx, `INSERT INTO worker_heartbeats (worker_id, pool_id, last_seen) VALUES ($1, $2, $3)
		ON CONFLICT (worker_id) DO NOTHING`, id, pool, at); err != nil {
		return "", fmt.Errorf("record heartbeat of worker %s: %w", id, err)
	}
	actx := eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: id, CorrelationID: id})
	_, err = g.cfg.Store.Append(actx, eventstore.Stream{Type: eventstore.StreamWorker, ID: id}, eventstore.NoStream, toAny(events)...)
	if errors.Is(err, eventstore.ErrConflict) {
		return "", &replyError{code: CodeExists, msg: fmt.Sprintf("worker %s already exists", id)}
	}
	if err != nil {
		return "", fmt.Errorf("register worker %s: %w", id, err)
	}
	g.log.InfoContext(ctx, "worker registered", "pool_id", pool, "worker_id", id, "metadata", len(b.Metadata))
	return id, nil
}

// runReport decides the command a worker of pool reports on its run, and
// frees the worker (and the stack) when the run ended, in one append.
func (g *Gateway) runReport(ctx context.Context, pool, kind, workerID, runID string, command func(at time.Time) run.Command) error {
	if err := errors.Join(ids.Worker.Validate("worker_id", workerID), ids.Run.Validate("run_id", runID)); err != nil {
		return &replyError{code: CodeInvalid, msg: err.Error()}
	}
	log := g.log.With("pool_id", pool, "worker_id", workerID, "run_id", runID, "kind", kind)
	var status run.Status
	actx := eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: workerID, CorrelationID: runID})
	err := execute(actx, g.cfg.Store, func(ctx context.Context, u *unit) error {
		at := g.now()
		w, err := g.liveWorker(ctx, u, pool, workerID)
		if err != nil {
			return err
		}
		r, err := u.run(ctx, runID)
		if err != nil {
			return err
		}
		if !r.state.Exists() {
			return &replyError{code: CodeUnknown, msg: fmt.Sprintf("no run %s", runID)}
		}
		if r.state.WorkerID() != workerID || w.state.RunID() != runID {
			return &replyError{code: CodeNotYours, msg: fmt.Sprintf("run %s is not assigned to worker %s", runID, workerID)}
		}
		if _, err := r.do(command(at)); err != nil {
			return domainError(err)
		}
		status = r.state.Status()
		return endRun(ctx, u, r, w, workerID, at)
	})
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "run report recorded", "status", string(status))
	return nil
}

// liveWorker loads a worker of pool that is not gone.
func (g *Gateway) liveWorker(ctx context.Context, u *unit, pool, workerID string) (*workerAggregate, error) {
	w, err := u.worker(ctx, workerID)
	if err != nil {
		return nil, err
	}
	if !w.state.Exists() || w.state.PoolID() != pool {
		return nil, &replyError{code: CodeUnknown, msg: fmt.Sprintf("no worker %s in pool %s", workerID, pool)}
	}
	if w.state.Gone() {
		return nil, &replyError{code: CodeGone, msg: fmt.Sprintf("worker %s is %s", workerID, w.state.Status())}
	}
	return w, nil
}

// exit deregisters a worker; a run it still held goes back or fails.
func (g *Gateway) exit(ctx context.Context, pool string, b ExitReport) error {
	if err := ids.Worker.Validate("worker_id", b.WorkerID); err != nil {
		return &replyError{code: CodeInvalid, msg: err.Error()}
	}
	var runID string
	actx := eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: b.WorkerID, CorrelationID: b.WorkerID})
	err := execute(actx, g.cfg.Store, func(ctx context.Context, u *unit) error {
		at := g.now()
		w, err := g.liveWorker(ctx, u, pool, b.WorkerID)
		if err != nil {
			return err
		}
		runID = w.state.RunID()
		if _, err := w.do(worker.Deregister{Note: b.Note, Actor: b.WorkerID, At: at}); err != nil {
			return domainError(err)
		}
		return abandonRun(ctx, u, b.WorkerID, runID, fmt.Sprintf("worker %s exited while running it", b.WorkerID), b.WorkerID, at)
	})
	if err != nil {
		return err
	}
	if _, err := g.cfg.Pool.Exec(ctx, `DELETE FROM worker_heartbeats WHERE worker_id = $1`, b.WorkerID); err != nil {
		g.log.WarnContext(ctx, "could not drop the heartbeat of an exited worker", "worker_id", b.WorkerID, "err", err)
	}
	g.log.InfoContext(ctx, "worker exited", "pool_id", pool, "worker_id", b.WorkerID, "run_id", runID)
	return nil
}

// abandonRun deals with the run of a worker that went away: back to its
// queue position (unassigned) when no phase had started on that worker,
// FAILED with note otherwise, releasing the stack.
func abandonRun(ctx context.Context, u *unit, workerID, runID, note, actor string, at time.Time) error {
	if runID == "" {
		return nil
	}
	r, err := u.run(ctx, runID)
	if err != nil {
		return err
	}
	if !r.state.Exists() || r.state.IsTerminal() || r.state.WorkerID() != workerID {
		return nil
	}
	switch r.state.Status() {
	case run.Ready, run.Confirmed:
		_, err = r.do(run.Unassign{Note: note, Actor: actor, At: at})
	default:
		_, err = r.do(run.Fail{Note: note, Actor: actor, At: at})
	}
	if err != nil {
		return fmt.Errorf("run %s of worker %s: %w", runID, workerID, err)
	}
	if r.state.IsTerminal() {
		return releaseStack(ctx, u, r, actor, at)
	}
	return nil
}

// domainError turns a domain refusal into what the launcher is told.
func domainError(err error) error {
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		return &replyError{code: CodeInvalid, msg: err.Error()}
	case errors.Is(err, run.ErrIllegalTransition):
		return &replyError{code: CodeIllegal, msg: err.Error()}
	case errors.Is(err, worker.ErrGone):
		return &replyError{code: CodeGone, msg: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return &replyError{code: CodeUnknown, msg: err.Error()}
	case errors.Is(err, domain.ErrAlreadyExists):
		return &replyError{code: CodeExists, msg: err.Error()}
	}
	return err
}

func toAny[E any](events []E) []any {
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = e
	}
	return out
}
