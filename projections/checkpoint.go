package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/eventstore"
)

// notifyChannel is where projectors announce that checkpoints moved; the
// payload is the projection's name. Waiters LISTEN on it.
const notifyChannel = "gantry_projections"

const (
	ensureCheckpointSQL = `INSERT INTO checkpoints (name, tx_id, position, updated_at) VALUES ($1, 0, 0, now()) ON CONFLICT (name) DO NOTHING`
	lockCheckpointSQL   = `SELECT tx_id, position FROM checkpoints WHERE name = $1 FOR UPDATE`
	saveCheckpointSQL   = `UPDATE checkpoints SET tx_id = $2, position = $3, event_id = $4, updated_at = now() WHERE name = $1`
	resetCheckpointSQL  = `UPDATE checkpoints SET tx_id = 0, position = 0, event_id = NULL, updated_at = now() WHERE name = $1`
	notifySQL           = `SELECT pg_notify($1, $2)`
)

// lockCheckpoint creates the projection's checkpoint row if it is missing,
// then locks it for the rest of tx and returns it. The lock is what keeps
// two projectors from applying the same events: the second waits, then
// finds the checkpoint moved on.
//
// The transaction commits without waiting for its WAL flush: a crash may
// lose its last commits, but the tables and the checkpoint are lost
// together, and the events are projected again.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, name string) (eventstore.Cursor, error) {
	b := &pgx.Batch{}
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(ensureCheckpointSQL, CheckpointName(name))
	b.Queue(lockCheckpointSQL, CheckpointName(name))
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("projection %s: relax commit durability: %w", name, err)
	}
	if _, err := br.Exec(); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("create checkpoint of projection %s: %w", name, err)
	}
	var c eventstore.Cursor
	if err := br.QueryRow().Scan(&c.Tx, &c.Position); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("lock checkpoint of projection %s: %w", name, err)
	}
	if err := br.Close(); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("lock checkpoint of projection %s: %w", name, err)
	}
	return c, nil
}

// queryer is what reading checkpoints needs: a pool or a connection.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readCheckpoints returns the checkpoints of the named projections, without
// locking; a projection that never ran is at the zero cursor.
func readCheckpoints(ctx context.Context, q queryer, names []string) (map[string]eventstore.Cursor, error) {
	rows := make([]string, len(names))
	for i, n := range names {
		rows[i] = CheckpointName(n)
	}
	rs, err := q.Query(ctx, "SELECT name, tx_id, position FROM checkpoints WHERE name = ANY($1)", rows)
	if err != nil {
		return nil, fmt.Errorf("read projection checkpoints: %w", err)
	}
	defer rs.Close()
	out := make(map[string]eventstore.Cursor, len(names))
	for _, n := range names {
		out[n] = eventstore.Cursor{}
	}
	for rs.Next() {
		var row string
		var c eventstore.Cursor
		if err := rs.Scan(&row, &c.Tx, &c.Position); err != nil {
			return nil, fmt.Errorf("read projection checkpoints: %w", err)
		}
		out[row[len(checkpointPrefix):]] = c
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read projection checkpoints: %w", err)
	}
	return out, nil
}
