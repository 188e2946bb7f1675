package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/commands"
)

// sweepBatch bounds how many lost workers one sweep handles.
const sweepBatch = 100

// heartbeat moves the worker's last-seen time forward. Only the row of the
// subject's pool is touched: a heartbeat naming another pool's worker, or a
// worker that is gone, changes nothing and is answered "gone".
func (g *Gateway) heartbeat(ctx context.Context, m *nats.Msg, pool, workerID string) {
	tag, err := g.cfg.Pool.Exec(ctx, `UPDATE worker_heartbeats SET last_seen = GREATEST(last_seen, $3)
		WHERE worker_id = $1 AND pool_id = $2`, workerID, pool, g.now())
	switch {
	case err != nil:
		g.log.ErrorContext(ctx, "could not record a heartbeat", "pool_id", pool, "worker_id", workerID, "err", err)
		g.respond(ctx, m, Reply{Code: CodeInternal, Error: err.Error()})
	case tag.RowsAffected() == 0:
		g.log.DebugContext(ctx, "heartbeat of an unknown or gone worker", "pool_id", pool, "worker_id", workerID)
		g.respond(ctx, m, Reply{Code: CodeGone, Error: fmt.Sprintf("no live worker %s in pool %s: register again", workerID, pool)})
	default:
		if m.Reply == "" {
			return
		}
		reply := Reply{OK: true}
		// A stop request the worker may have missed (the stop message is
		// sent once): the read model says so a moment after the event.
		err := g.cfg.Pool.QueryRow(ctx, `SELECT id FROM rm_runs WHERE worker_id = $1 AND pool_id = $2
			AND worker_id <> '' AND stop_requested_by <> '' LIMIT 1`, workerID, pool).Scan(&reply.StopRunID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			g.log.WarnContext(ctx, "could not look for a pending stop", "worker_id", workerID, "err", err)
		}
		g.respond(ctx, m, reply)
	}
}

// Sweep marks every worker whose last heartbeat is older than the
// heartbeat timeout as lost, and returns how many it marked. Replicas may
// sweep at once: each worker is handled by one of them (its heartbeat row
// is locked while its events are appended), and the appends' expected
// versions keep a concurrent report from being overwritten.
func (g *Gateway) Sweep(ctx context.Context) (int, error) {
	cutoff := g.now().Add(-g.cfg.HeartbeatTimeout)
	rows, err := g.cfg.Pool.Query(ctx, `SELECT worker_id, pool_id FROM worker_heartbeats
		WHERE last_seen < $1 ORDER BY last_seen LIMIT $2`, cutoff, sweepBatch)
	if err != nil {
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
