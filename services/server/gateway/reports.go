package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// Commands is the command layer that decides what reports and lost workers
// mean; *commands.Service satisfies it. Its refusals are
// *commands.RefusedError, which the gateway answers with their codes; any
// other error is answered "internal".
type Commands interface {
	RegisterWorker(ctx context.Context, poolID string, r commands.WorkerRegistration) (string, error)
	StartPhase(ctx context.Context, poolID, workerID, runID string, phase run.Phase) error
	FinishPhase(ctx context.Context, poolID, workerID, runID string, p commands.PhaseResult) (run.Status, error)
	FinishAndStartPhase(ctx context.Context, poolID, workerID, runID string, p commands.PhaseResult, next run.Phase) error
	EndRun(ctx context.Context, poolID, workerID, runID string, end run.Status, note string, last *commands.PhaseResult) error
	HandBackRun(ctx context.Context, poolID, workerID, runID, note string) error
	SettleDroppedRun(ctx context.Context, poolID, workerID, runID, note string) (bool, error)
	DeregisterWorker(ctx context.Context, poolID, workerID, note string) error
	MarkWorkerLost(ctx context.Context, c commands.Caller, workerID, note string) (bool, error)
	RunJob(ctx context.Context, poolID, workerID, runID string) (protocol.Job, error)
	PhaseCredentials(ctx context.Context, poolID, workerID, runID string, phase run.Phase) ([]byte, error)
}

var _ Commands = (*commands.Service)(nil)

// report serves one report of pool (taken from the subject).
func (g *Gateway) report(ctx context.Context, pool, kind string, data []byte) (protocol.Reply, error) {
	cmds := g.cfg.Commands
	switch kind {
	case protocol.KindRegister:
		var b protocol.RegisterReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		id, err := g.register(ctx, pool, b)
		return protocol.Reply{WorkerID: id}, replyErr(err)
	case protocol.KindRunJob:
		var b protocol.RunReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		job, err := cmds.RunJob(ctx, pool, b.WorkerID, b.RunID)
		if err != nil {
			return protocol.Reply{}, replyErr(err)
		}
		return protocol.Reply{Job: &job}, nil
	case protocol.KindPhaseStarted:
		var b protocol.PhaseStartedReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		var err error
		if b.Finished != nil {
			err = cmds.FinishAndStartPhase(ctx, pool, b.WorkerID, b.RunID, phaseResult(*b.Finished), b.Phase)
		} else {
			err = cmds.StartPhase(ctx, pool, b.WorkerID, b.RunID, b.Phase)
		}
		if err != nil {
			return protocol.Reply{}, replyErr(err)
		}
		// The phase's state credentials come with the answer: one round
		// trip less at every phase boundary.
		creds, err := cmds.PhaseCredentials(ctx, pool, b.WorkerID, b.RunID, b.Phase)
		return protocol.Reply{StateCredentials: creds}, replyErr(err)
	case protocol.KindPhaseCredentials:
		var b protocol.PhaseStartedReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		creds, err := cmds.PhaseCredentials(ctx, pool, b.WorkerID, b.RunID, b.Phase)
		return protocol.Reply{StateCredentials: creds}, replyErr(err)
	case protocol.KindPhaseFinished:
		var b protocol.PhaseFinishedReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		status, err := cmds.FinishPhase(ctx, pool, b.WorkerID, b.RunID, phaseResult(b))
		return protocol.Reply{RunStatus: status}, replyErr(err)
	case protocol.KindRunFinished, protocol.KindRunFailed, protocol.KindRunStopped:
		var b protocol.RunReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		end := map[string]run.Status{protocol.KindRunFinished: run.Finished, protocol.KindRunFailed: run.Failed, protocol.KindRunStopped: run.Stopped}[kind]
		var last *commands.PhaseResult
		if b.Finished != nil {
			r := phaseResult(*b.Finished)
			last = &r
		}
		return protocol.Reply{}, replyErr(cmds.EndRun(ctx, pool, b.WorkerID, b.RunID, end, b.Note, last))
	case protocol.KindRunHandedBack:
		var b protocol.RunReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		return protocol.Reply{}, replyErr(cmds.HandBackRun(ctx, pool, b.WorkerID, b.RunID, b.Note))
	case protocol.KindExit:
		var b protocol.ExitReport
		if err := decodeBody(data, &b); err != nil {
			return protocol.Reply{}, err
		}
		return protocol.Reply{}, replyErr(g.exit(ctx, pool, b))
	}
	return protocol.Reply{}, &replyError{code: protocol.CodeInvalid, msg: fmt.Sprintf("unknown report kind %q", kind)}
}

// register registers a new worker of pool, and starts its heartbeat clock.
func (g *Gateway) register(ctx context.Context, pool string, b protocol.RegisterReport) (string, error) {
	return g.cfg.Commands.RegisterWorker(ctx, pool, commands.WorkerRegistration{
		WorkerID: b.WorkerID, Metadata: b.Metadata, Version: b.Version,
		// The row comes first: a worker must never exist without one, or
		// it could not be found lost. A row left by a failed append names
		// no worker and is dropped by the next sweep.
		Before: func(ctx context.Context, id string, at time.Time) error {
			if _, err := g.cfg.Pool.Exec(ctx, `INSERT INTO worker_heartbeats (worker_id, pool_id, last_seen) VALUES ($1, $2, $3)
				ON CONFLICT (worker_id) DO NOTHING`, id, pool, at); err != nil {
				return fmt.Errorf("record heartbeat of worker %s: %w", id, err)
			}
			return nil
		},
	})
}

// exit deregisters a worker and drops its heartbeat row.
func (g *Gateway) exit(ctx context.Context, pool string, b protocol.ExitReport) error {
	if err := g.cfg.Commands.DeregisterWorker(ctx, pool, b.WorkerID, b.Note); err != nil {
		return err
	}
	if _, err := g.cfg.Pool.Exec(ctx, `DELETE FROM worker_heartbeats WHERE worker_id = $1`, b.WorkerID); err != nil {
		g.log.WarnContext(ctx, "could not drop the heartbeat of an exited worker", "worker_id", b.WorkerID, "err", err)
	}
	return nil
}

// replyErr turns a refusal of the command layer into what the launcher is
// told; other errors stay failures ("internal").
func replyErr(err error) error {
	var refused *commands.RefusedError
	if !errors.As(err, &refused) {
		return err
	}
	var ve *domain.ValidationError
	code := protocol.CodeInternal
	switch {
	case errors.As(err, &ve):
		code = protocol.CodeInvalid
	case errors.Is(err, run.ErrStopPending):
		code = protocol.CodeStopRequested
	case errors.Is(err, commands.ErrNotYourRun):
		code = protocol.CodeNotYours
	case errors.Is(err, run.ErrIllegalTransition):
		code = protocol.CodeIllegal
	case errors.Is(err, worker.ErrGone):
		code = protocol.CodeGone
	case errors.Is(err, domain.ErrNotFound):
		code = protocol.CodeUnknown
	case errors.Is(err, domain.ErrAlreadyExists):
		code = protocol.CodeExists
	}
	return &replyError{code: code, msg: refused.Error()}
}

// phaseResult is the command layer's form of a phase result.
func phaseResult(b protocol.PhaseFinishedReport) commands.PhaseResult {
	return commands.PhaseResult{Phase: b.Phase, ExitCode: b.ExitCode, Duration: time.Duration(b.DurationMS) * time.Millisecond,
		HasChanges: b.HasChanges, Note: b.Note, ChangedResources: b.ChangedResources, Plan: b.Plan, Outputs: b.Outputs}
}

// decodeBody decodes a report's JSON body into v; a malformed one is
// refused as invalid.
func decodeBody(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return &replyError{code: protocol.CodeInvalid, msg: "malformed body: " + err.Error()}
	}
	return nil
}
