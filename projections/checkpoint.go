package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
)

// notifyChannel is where projectors announce that checkpoints moved; the
// payload (checkpointNotice) says where each moved projection now is.
// Waiters LISTEN on it.
const notifyChannel = "gantry_projections"

// checkpointNotice is the payload of a notification that the named
// projections' checkpoints are at the given cursors: "runs=812/40,stacks=812/40".
func checkpointNotice(at map[string]eventstore.Cursor) string {
	parts := make([]string, 0, len(at))
	for _, name := range slices.Sorted(maps.Keys(at)) {
		c := at[name]
		parts = append(parts, name+"="+strconv.FormatInt(c.Tx, 10)+"/"+strconv.FormatInt(c.Position, 10))
	}
	return strings.Join(parts, ",")
}

// parseCheckpointNotice reads a checkpointNotice; ok is false for any other
// payload.
func parseCheckpointNotice(payload string) (at map[string]eventstore.Cursor, ok bool) {
	at = map[string]eventstore.Cursor{}
	for part := range strings.SplitSeq(payload, ",") {
		name, cursor, found := strings.Cut(part, "=")
		tx, pos, found2 := strings.Cut(cursor, "/")
		if !found || !found2 || name == "" {
			return nil, false
		}
		var c eventstore.Cursor
		var err1, err2 error
		c.Tx, err1 = strconv.ParseInt(tx, 10, 64)
		c.Position, err2 = strconv.ParseInt(pos, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		at[name] = c
	}
	return at, true
}

const (
	ensureCheckpointsSQL = `INSERT INTO checkpoints (name, tx_id, position, updated_at) SELECT unnest($1::text[]), 0, 0, now() ON CONFLICT (name) DO NOTHING`
	lockCheckpointsSQL   = `SELECT name, tx_id, position FROM checkpoints WHERE name = ANY($1) ORDER BY name FOR UPDATE`
	saveCheckpointSQL    = `UPDATE checkpoints SET tx_id = $2, position = $3, event_id = $4, updated_at = now() WHERE name = $1`
	resetCheckpointSQL   = `UPDATE checkpoints SET tx_id = 0, position = 0, event_id = NULL, updated_at = now() WHERE name = $1`
	notifySQL            = `SELECT pg_notify($1, $2)`
)

// checkpointTx is a transaction holding the row locks of some projections'
// checkpoints. The locks are what keep two projectors from applying the
// same events: the second waits, then finds the checkpoints moved on.
//
// It is driven by hand, BEGIN travelling in the batch that takes the locks
// and COMMIT in the batch that applies the events, so that a step costs two
// round trips to PostgreSQL whatever the number of projections it moves.
//
// The transaction commits without waiting for its WAL flush: a crash may
// lose its last commits, but the tables and the checkpoints are lost
// together, and the events are projected again.
type checkpointTx struct {
	conn  *pgxpool.Conn
	names []string // the projections, sorted: rows are created and locked in this order
	ended bool
}

// beginCheckpoints starts a transaction, creates the named projections'
// checkpoint rows where they are missing, locks them, and returns them.
// The caller must call end.
func beginCheckpoints(ctx context.Context, pool *pgxpool.Pool, names []string) (*checkpointTx, map[string]eventstore.Cursor, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("projections %s: acquire a connection: %w", strings.Join(names, ", "), err)
	}
	t := &checkpointTx{conn: conn, names: slices.Sorted(slices.Values(names))}
	rows := make([]string, len(t.names))
	for i, n := range t.names {
		rows[i] = CheckpointName(n)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(ensureCheckpointsSQL, rows)
	b.Queue(lockCheckpointsSQL, rows)
	br := conn.SendBatch(ctx, b)
	cps, err := t.readLocked(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("lock checkpoints of projections %s: %w", strings.Join(t.names, ", "), cerr)
	}
	if err != nil {
		t.end(ctx)
		return nil, nil, err
	}
	return t, cps, nil
}

func (t *checkpointTx) readLocked(br pgx.BatchResults) (map[string]eventstore.Cursor, error) {
	names := strings.Join(t.names, ", ")
	for _, what := range []string{"begin", "relax commit durability", "create checkpoints"} {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("projections %s: %s: %w", names, what, err)
		}
	}
	rs, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("lock checkpoints of projections %s: %w", names, err)
	}
	cps := make(map[string]eventstore.Cursor, len(t.names))
	for rs.Next() {
		var row string
		var c eventstore.Cursor
		if err := rs.Scan(&row, &c.Tx, &c.Position); err != nil {
			rs.Close()
			return nil, fmt.Errorf("lock checkpoints of projections %s: %w", names, err)
		}
		cps[row[len(checkpointPrefix):]] = c
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("lock checkpoints of projections %s: %w", names, err)
	}
	if len(cps) != len(t.names) {
		return nil, fmt.Errorf("lock checkpoints of projections %s: found %d rows of %d", names, len(cps), len(t.names))
	}
	return cps, nil
}

// commit sends b, then COMMIT, in one round trip. A statement of b that
// fails is reported by failed(i, err), i its index in b, and nothing
// commits.
func (t *checkpointTx) commit(ctx context.Context, b *pgx.Batch, failed func(i int, err error) error) error {
	n := b.Len()
	b.Queue("COMMIT")
	br := t.conn.SendBatch(ctx, b)
	for i := range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return failed(i, err)
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("the transaction ended with %s", tag)
	}
	if err != nil {
		return fmt.Errorf("projections %s: commit: %w", strings.Join(t.names, ", "), err)
	}
	t.ended = true
	return nil
}

// end rolls back unless commit succeeded, and gives the connection back
// (the pool closes one that is still inside a transaction).
func (t *checkpointTx) end(ctx context.Context) {
	if !t.ended && !t.conn.Conn().IsClosed() && t.conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	t.conn.Release()
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
