package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/tracing"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// pass makes one round of assignments. again reports that work may be
// left that this pass did not look at (a pool's candidate list was cut).
func (s *Scheduler) pass(ctx context.Context) (again bool, err error) {
	s.passes.Add(1)
	s.m.passes.Inc()
	hintedRuns, hintedWorkers := s.hints.snapshot(s.cfg.Now())
	workers, err := s.idleWorkers(ctx, hintedWorkers)
	if err != nil || len(workers) == 0 {
		return false, err
	}
	pools := make([]string, 0, len(workers))
	for pool := range workers {
		pools = append(pools, pool)
	}
	runs, full, err := s.waitingRuns(ctx, pools, hintedRuns)
	if err != nil {
		return false, err
	}
	for _, pool := range pools {
		ws := workers[pool]
		// Replicas see the same runs in the same order; shuffled workers
		// make them less likely to reach for the same worker as well.
		rand.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
		for _, c := range runs[pool] {
			if len(ws) == 0 {
				break
			}
			if ws, err = s.assignRun(ctx, c, ws); err != nil {
				return false, err
			}
		}
		again = again || (len(ws) > 0 && full[pool])
	}
	return again, nil
}

// Commands is the command layer the scheduler records assignments with;
// *commands.System and *commands.Service satisfy it.
type Commands interface {
	// AssignRun gives a run waiting in pool to an idle worker of the pool,
	// deciding again on fresh state when another writer got there first.
	// Its refusals match commands.ErrRunNotWaiting, commands.ErrRunMoved or
	// commands.ErrWorkerNotIdle.
	AssignRun(ctx context.Context, c commands.Caller, runID, poolID, workerID string) (commands.Assigned, error)
}

// assignRun gives the run c to one of the workers ws, and returns the
// workers still idle. The command layer decides on the run and the worker
// freshly loaded and appends both events at the versions it loaded; when
// another writer (usually another scheduler) got there first it decides
// again on what changed, so a run or worker no longer free is refused: the
// run is then dropped, the worker skipped.
func (s *Scheduler) assignRun(ctx context.Context, c runCandidate, ws []workerCandidate) (_ []workerCandidate, err error) {
	log := s.log.With("run_id", c.id, "pool_id", c.pool)
	ctx, span := s.startSpan(ctx, c)
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	for len(ws) > 0 {
		w := ws[0]
		wlog := log.With("worker_id", w.id)
		a, err := s.cfg.Commands.AssignRun(ctx, commands.Caller{Actor: s.cfg.Actor}, c.id, c.pool, w.id)
		var refused *commands.RefusedError
		switch {
		case errors.Is(err, commands.ErrRunNotWaiting):
			s.m.refusals.WithLabelValues(reasonRunNotWaiting).Inc()
			s.hints.forgetRun(c.id)
			return ws, nil
		case errors.Is(err, commands.ErrRunMoved):
			// The stack moved to another pool (or went away) since the read
			// model was written; a later pass sees the run under its pool.
			s.m.refusals.WithLabelValues(reasonRunMoved).Inc()
			return ws, nil
		case errors.Is(err, workerpool.ErrDriftLimit):
			// The pool runs as many drift runs as it may: this one waits
			// for one of them to end; the worker may take other work.
			wlog.DebugContext(ctx, "drift run waits for the pool's drift run limit", "err", err)
			return ws, nil
		case errors.Is(err, commands.ErrWorkerNotIdle):
			s.m.refusals.WithLabelValues(reasonWorkerNotIdle).Inc()
			s.hints.forgetWorker(w.id)
			ws = ws[1:]
			continue
		case errors.Is(err, eventstore.ErrConflict):
			s.m.refusals.WithLabelValues(reasonConflict).Inc()
			wlog.DebugContext(ctx, "assignment lost to concurrent changes; the next pass tries again", "err", err)
			return ws, nil
		case errors.As(err, &refused):
			s.m.refusals.WithLabelValues(reasonRefused).Inc()
			wlog.WarnContext(ctx, "assignment refused", "err", err)
			return ws, nil
		case err != nil:
			return ws, fmt.Errorf("assign run %s to worker %s: %w", c.id, w.id, err)
		}
		s.assigned.Add(1)
		s.m.assignments.WithLabelValues(a.PoolID).Inc()
		if !a.WaitingSince.IsZero() {
			s.m.pickup.WithLabelValues(a.PoolID).Observe(a.At.Sub(a.WaitingSince).Seconds())
		}
		span.SetAttributes(attribute.String("gantry.worker_id", a.WorkerID))
		s.hints.forgetRun(c.id)
		s.hints.forgetWorker(w.id)
		s.notify(ctx, protocol.Assignment{RunID: a.RunID, StackID: a.StackID, PoolID: a.PoolID, WorkerID: a.WorkerID, Type: a.Type,
			Status: a.Status, Commit: a.Commit, RunVersion: a.RunVersion, AssignedAt: a.At})
		wlog.InfoContext(ctx, "run assigned", "run_type", string(a.Type), "status", string(a.Status),
			"waited", a.At.Sub(c.queuedAt).String())
		return slices.Delete(ws, 0, 1), nil
	}
	return ws, nil
}

// startSpan starts the span of one run's assignment as a child of the span
// that queued the run (its stream's first event): the run's trace follows
// it to the worker. Without tracing it does nothing, and reads nothing.
func (s *Scheduler) startSpan(ctx context.Context, c runCandidate) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noop.Span{}
	}
	if md, err := eventstore.Origin(ctx, s.cfg.Pool, c.id); err == nil {
		if sc := md.SpanContext(); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	} else {
		s.log.DebugContext(ctx, "no trace to follow for the run", "run_id", c.id, "err", err)
	}
	return s.tracer.Start(ctx, "scheduler.assign", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("gantry.run_id", c.id), attribute.String("gantry.pool_id", c.pool)))
}

// notify tells the worker of its new run. A lost message does not undo the
// assignment, which is recorded; the worker can read it from the API.
func (s *Scheduler) notify(ctx context.Context, a protocol.Assignment) {
	body, err := json.Marshal(a)
	if err == nil {
		msg := nats.NewMsg(protocol.WorkerSubject(a.PoolID, a.WorkerID, protocol.KindAssign))
		msg.Data = body
		tracing.Inject(ctx, msg.Header)
		err = s.cfg.NATS.PublishMsg(msg)
	}
	if err != nil {
		s.log.WarnContext(ctx, "could not send the assignment to the worker",
			"run_id", a.RunID, "pool_id", a.PoolID, "worker_id", a.WorkerID, "err", err)
	}
}
