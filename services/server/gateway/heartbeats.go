package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// sweepBatch bounds how many lost workers one sweep handles.
const sweepBatch = 100

// heartbeat moves the worker's last-seen time forward. Only the row of the
// subject's pool is touched: a heartbeat naming another pool's worker, or a
// worker that is gone, changes nothing and is answered "gone".
func (g *Gateway) heartbeat(ctx context.Context, m *nats.Msg, pool, workerID string) {
	var hb protocol.HeartbeatReport
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			g.respond(ctx, m, protocol.Reply{Code: protocol.CodeInvalid, Error: "malformed heartbeat: " + err.Error()})
			return
		}
	}
	tag, err := g.cfg.Pool.Exec(ctx, `UPDATE worker_heartbeats SET last_seen = GREATEST(last_seen, $3)
		WHERE worker_id = $1 AND pool_id = $2`, workerID, pool, g.now())
	switch {
	case err != nil:
		g.respond(ctx, m, g.internal(ctx, g.log.With("pool_id", pool, "worker_id", workerID), fmt.Errorf("record a heartbeat: %w", err)))
	case tag.RowsAffected() == 0:
		g.log.DebugContext(ctx, "heartbeat of an unknown or gone worker", "pool_id", pool, "worker_id", workerID)
		g.respond(ctx, m, protocol.Reply{Code: protocol.CodeGone, Error: fmt.Sprintf("no live worker %s in pool %s: register again", workerID, pool)})
	default:
		if m.Reply == "" {
			return
		}
		reply, err := g.heldRun(ctx, pool, workerID, hb)
		if err != nil {
			g.log.WarnContext(ctx, "could not look up the worker's run", "worker_id", workerID, "err", err)
		}
		g.respond(ctx, m, reply)
	}
}

// missedAfter is how long a run must have been assigned and not started
// before a heartbeat's answer hands it to the worker again: longer than an
// assignment message takes, so that the worker does not get it twice.
const missedAfter = 10 * time.Second

// heldRun answers a heartbeat with what its worker may have missed (from
// the read models, a moment behind the events): a cycle of its pool
// (Cycle), a stop request of its run (StopRunID), or the assignment of a
// run that has not started for a while (AssignedRunID). A run the worker
// says it is done with (hb) while the read model has it in a phase on the
// worker is failed, if the run's events agree (SettleDroppedRun).
func (g *Gateway) heldRun(ctx context.Context, pool, workerID string, hb protocol.HeartbeatReport) (protocol.Reply, error) {
	reply := protocol.Reply{OK: true}
	var (
		runID, status string
		stopping      bool
		updated       time.Time
	)
	// A cycle of the pool requested after the worker registered: the
	// broadcast did not reach it.
	err := g.cfg.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rm_workers w JOIN rm_worker_pools p ON p.id = w.pool_id
		WHERE w.id = $1 AND w.pool_id = $2 AND p.cycle_requested_at > w.registered_at)`, workerID, pool).Scan(&reply.Cycle)
	if err != nil {
		return reply, err
	}
	err = g.cfg.Pool.QueryRow(ctx, `SELECT id, status, stop_requested_by <> '', updated_at FROM rm_runs
		WHERE worker_id = $1 AND pool_id = $2 AND worker_id <> '' LIMIT 1`, workerID, pool).Scan(&runID, &status, &stopping, &updated)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return reply, nil
	case err != nil:
		return reply, err
	case hb.RunID == "" && hb.SettledRunID == runID && status != string(run.Ready) && status != string(run.Confirmed):
		note := fmt.Sprintf("worker %s is done with the run and holds no report of its end (the launcher gave up reporting it, or was restarted without its reports)", workerID)
		if _, err := g.cfg.Commands.SettleDroppedRun(ctx, pool, workerID, runID, note); err != nil {
			return reply, fmt.Errorf("settle run %s: %w", runID, err)
		}
	case stopping:
		reply.StopRunID = runID
	case (status == string(run.Ready) || status == string(run.Confirmed)) && g.now().Sub(updated) > missedAfter:
		reply.AssignedRunID = runID
	}
	return reply, nil
}

// Sweep marks every worker whose last heartbeat is older than the
// heartbeat timeout as lost, and returns how many it marked. Silence is
// counted only from when this gateway could last receive and record
// heartbeats again (its start, the end of a NATS or database outage): a
// worker is never lost for an outage between it and the server. Replicas
// may sweep at once: each worker is handled by one of them (its heartbeat
// row is locked while its events are appended), and the appends' expected
// versions keep a concurrent report from being overwritten.
func (g *Gateway) Sweep(ctx context.Context) (int, error) {
	cutoff := g.now().Add(-g.cfg.HeartbeatTimeout)
	if g.health.since().After(cutoff) {
		return 0, nil
	}
	rows, err := g.cfg.Pool.Query(ctx, `SELECT worker_id, pool_id FROM worker_heartbeats
		WHERE last_seen < $1 ORDER BY last_seen LIMIT $2`, cutoff, sweepBatch)
	if err != nil {
		g.health.down(g.now())
		return 0, fmt.Errorf("find lost workers: %w", err)
	}
	type stale struct{ worker, pool string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stale, error) {
		var s stale
		return s, r.Scan(&s.worker, &s.pool)
	})
	if err != nil {
		return 0, fmt.Errorf("find lost workers: %w", err)
	}
	lost := 0
	var errs []error
	for _, s := range found {
		ok, err := g.markLost(ctx, s.worker, s.pool, cutoff)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			lost++
		}
	}
	return lost, errors.Join(errs...)
}

// markLost marks one worker lost if its heartbeat is still older than
// cutoff (the command layer deals with its run), and drops its heartbeat
// row.
func (g *Gateway) markLost(ctx context.Context, workerID, pool string, cutoff time.Time) (bool, error) {
	tx, err := g.cfg.Pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var lastSeen time.Time
	err = tx.QueryRow(ctx, `SELECT last_seen FROM worker_heartbeats
		WHERE worker_id = $1 AND last_seen < $2 FOR UPDATE SKIP LOCKED`, workerID, cutoff).Scan(&lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // a heartbeat came in, or another replica has it
	}
	if err != nil {
		return false, fmt.Errorf("lock heartbeat of worker %s: %w", workerID, err)
	}
	silence := g.now().Sub(lastSeen).Round(time.Second)
	note := fmt.Sprintf("no heartbeat for %s (timeout %s)", silence, g.cfg.HeartbeatTimeout)
	marked, err := g.cfg.Commands.MarkWorkerLost(ctx, commands.Caller{Actor: g.cfg.Actor}, workerID, note)
	if err != nil {
		return false, fmt.Errorf("worker %s of pool %s: %w", workerID, pool, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM worker_heartbeats WHERE worker_id = $1`, workerID); err != nil {
		return false, fmt.Errorf("drop heartbeat of worker %s: %w", workerID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("drop heartbeat of worker %s: %w", workerID, err)
	}
	if marked {
		g.log.WarnContext(ctx, "worker lost", "pool_id", pool, "worker_id", workerID, "silence", silence.String())
	}
	return marked, nil
}
