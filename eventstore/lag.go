package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RelayCheckpointName names the relay's row in the checkpoints table, for
// CheckpointLags.
const RelayCheckpointName = relayCheckpoint

// Lag is how far a consumer's checkpoint is behind the store's head.
type Lag struct {
	// Events counts the committed events after the checkpoint, up to the
	// limit CheckpointLags was given.
	Events int64
	// Seconds is the age of the oldest event after the checkpoint; 0 when
	// the consumer is caught up.
	Seconds float64
}

// checkpointLagsSQL counts, for each checkpoint name in $1, at most $2
// events after it in commit order, walking the commit-order index from
// the checkpoint: the cost is bounded by the limit, not by the store.
const checkpointLagsSQL = `
WITH cp AS (
	SELECT n.name, coalesce(c.tx_id, 0) AS tx, coalesce(c.position, 0) AS pos
	FROM unnest($1::text[]) AS n(name) LEFT JOIN checkpoints c ON c.name = n.name)
SELECT cp.name, l.n, l.age FROM cp CROSS JOIN LATERAL (
	SELECT count(*) AS n, greatest(coalesce(extract(epoch FROM now() - min(t.recorded_at)), 0), 0)::float8 AS age
	FROM (SELECT e.recorded_at FROM events e WHERE (e.tx_id, e.position) > (cp.tx, cp.pos)
		ORDER BY e.tx_id, e.position LIMIT $2) t) l`

// CheckpointLags returns how far each named checkpoint (RelayCheckpointName,
// a projection's) is behind the head of the store, counting at most limit
// events each. A checkpoint that does not exist yet is at the start. Ages
// are the database's clock minus the events' times, never below 0.
func CheckpointLags(ctx context.Context, pool *pgxpool.Pool, names []string, limit int) (map[string]Lag, error) {
	rows, err := pool.Query(ctx, checkpointLagsSQL, names, limit)
	if err != nil {
		return nil, fmt.Errorf("checkpoint lags: %w", err)
	}
	out := make(map[string]Lag, len(names))
	var (
		name string
		lag  Lag
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &lag.Events, &lag.Seconds}, func() error {
		out[name] = lag
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint lags: %w", err)
	}
	return out, nil
}

// Origin returns the metadata of the first event of a stream: who created
// the aggregate, and the trace of the request that did (a run's trace is
// the trace of the call that queued it). A stream without events is
// ErrNotFound.
func Origin(ctx context.Context, pool *pgxpool.Pool, streamID string) (Metadata, error) {
	var md Metadata
	err := pool.QueryRow(ctx, `SELECT coalesce(metadata->>'actor', ''), coalesce(metadata->>'correlation_id', ''),
		coalesce(metadata->>'causation_id', ''), coalesce(metadata->>'trace_id', ''), coalesce(metadata->>'span_id', '')
		FROM events WHERE stream_id = $1 AND version = 1`, streamID).
		Scan(&md.Actor, &md.CorrelationID, &md.CausationID, &md.TraceID, &md.SpanID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Metadata{}, fmt.Errorf("origin of stream %s: %w", streamID, ErrNotFound)
	}
	if err != nil {
		return Metadata{}, fmt.Errorf("origin of stream %s: %w", streamID, err)
	}
	return md, nil
}
