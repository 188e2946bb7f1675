package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// notifyChannel is the LISTEN/NOTIFY channel that wakes readers after appends.
const notifyChannel = "gantry_events"

// maxAnyRetries bounds internal retries of Append(Any) that lose a race.
const maxAnyRetries = 16

// Store appends and reads events in PostgreSQL.
type Store struct {
	pool     *pgxpool.Pool
	registry *Registry
	log      *slog.Logger
	now      func() time.Time
	notifier *notifier
	tracer   trace.Tracer
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that stamps appended events (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithLogger sets the store's logger.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithTracerProvider traces every append as a span of tp, and records the
// span in the appended events' metadata (TraceID, SpanID) when it is
// sampled. Without it (or with nil) appends are not traced.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Store) {
		if tp != nil {
			s.tracer = tp.Tracer(tracerName)
		}
	}
}

// tracerName names the event store's tracer (the relay's too).
const tracerName = "github.com/gantryhq/gantry/eventstore"

// New returns a store on pool. Call Close to stop its background notifier.
// The schema must have been applied with Migrate.
func New(pool *pgxpool.Pool, registry *Registry, opts ...Option) *Store {
	s := &Store{pool: pool, registry: registry, log: slog.New(slog.DiscardHandler), now: time.Now, tracer: noop.NewTracerProvider().Tracer(tracerName)}
	for _, o := range opts {
		o(s)
	}
	s.notifier = startNotifier(pool, s.log)
	return s
}

// Close stops the store's background work. The pool stays open.
func (s *Store) Close() { s.notifier.stop() }

// Registry returns the store's event type registry.
func (s *Store) Registry() *Registry { return s.registry }

const appendSQL = `
WITH cur AS (SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = $1)
INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, recorded_at)
SELECT e.id, $1, $2, cur.v + e.ord, e.typ, e.sv, e.payload::jsonb, $7::jsonb, $8
FROM cur, unnest($3::uuid[], $4::text[], $5::int[], $6::text[]) WITH ORDINALITY AS e(id, typ, sv, payload, ord)
WHERE $9::bigint < 0 OR cur.v = $9::bigint
ORDER BY e.ord
RETURNING position, tx_id, version`

// Append adds events to the end of stream, atomically. expected is the
// version the stream must be at (NoStream for a new stream) or Any. Each
// event must be a value of a registered type. Metadata comes from ctx (see
// WithMetadata). On a stale expected version it returns a *ConflictError
// and writes nothing.
func (s *Store) Append(ctx context.Context, stream Stream, expected int64, events ...any) ([]Event, error) {
	out, err := s.AppendAll(ctx, Batch{Stream: stream, Expected: expected, Events: events})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Batch is one stream's part of an AppendAll.
type Batch struct {
	Stream   Stream
	Expected int64
	Events   []any
}

// AppendAll appends to several streams in one transaction: all batches are
// written or none is. It returns the stored events per batch. A stale
// expected version in any batch is a *ConflictError for that stream.
func (s *Store) AppendAll(ctx context.Context, batches ...Batch) (_ [][]Event, err error) {
	ctx, span := s.tracer.Start(ctx, "eventstore.append", trace.WithSpanKind(trace.SpanKindClient))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if span.IsRecording() && len(batches) > 0 {
		span.SetAttributes(attribute.String("gantry.stream", batches[0].Stream.String()), attribute.Int("gantry.streams", len(batches)))
	}
	if len(batches) == 0 {
		return nil, fmt.Errorf("append: %w: no streams", ErrInvalidEvent)
	}
	pending := make([][]Event, len(batches))
	anyOnly := true
	seen := make(map[string]bool, len(batches))
	for i, b := range batches {
		if seen[b.Stream.ID] {
			return nil, fmt.Errorf("append to %s: %w: the stream appears twice in one append", b.Stream, ErrInvalidEvent)
		}
		seen[b.Stream.ID] = true
		p, err := s.prepare(ctx, b.Stream, b.Expected, b.Events)
		if err != nil {
			return nil, err
		}
		pending[i] = p
		anyOnly = anyOnly && b.Expected == Any
	}
	for attempt := 0; ; attempt++ {
		out, err := s.insertAll(ctx, batches, pending)
		if err == nil {
			s.notifier.poke()
			return out, nil
		}
		// Any never conflicts for the caller: a lost race just means reading
		// the new version and trying again.
		if anyOnly && errors.Is(err, ErrConflict) && attempt < maxAnyRetries {
			continue
		}
		return nil, err
	}
}

func (s *Store) insertAll(ctx context.Context, batches []Batch, pending [][]Event) ([][]Event, error) {
	if len(batches) == 1 {
		out, err := s.insert(ctx, s.pool, batches[0].Stream, batches[0].Expected, pending[0])
		if err != nil {
			return nil, err
		}
		return [][]Event{out}, nil
	}
	var out [][]Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = make([][]Event, len(batches))
		for i, b := range batches {
			evs, err := s.insert(ctx, tx, b.Stream, b.Expected, pending[i])
			if err != nil {
				return err
			}
			out[i] = evs
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) prepare(ctx context.Context, stream Stream, expected int64, events []any) ([]Event, error) {
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("append to %s: %w: %w", stream, ErrInvalidEvent, err)
	}
	if expected < Any {
		return nil, fmt.Errorf("append to %s: %w: expected version %d: use Any, NoStream or a version >= 0", stream, ErrInvalidEvent, expected)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("append to %s: %w: no events", stream, ErrInvalidEvent)
	}
	md := MetadataFrom(ctx).withSpan(ctx)
	now := s.now().UTC().Truncate(time.Microsecond)
	out := make([]Event, len(events))
	for i, data := range events {
		name, version, err := s.registry.TypeOf(data)
		if err != nil {
			return nil, fmt.Errorf("append to %s: event %d: %w", stream, i, err)
		}
		payload, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("append to %s: event %d (%s): %w: payload does not serialize: %w", stream, i, name, ErrInvalidEvent, err)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("append to %s: event id: %w", stream, err)
		}
		out[i] = Event{
			ID: id.String(), StreamID: stream.ID, StreamType: stream.Type, Type: name,
			SchemaVersion: version, Payload: payload, Metadata: md, Time: now,
		}
	}
	return out, nil
}

func (s *Store) insert(ctx context.Context, q querier, stream Stream, expected int64, pending []Event) ([]Event, error) {
	ids := make([]string, len(pending))
	types := make([]string, len(pending))
	versions := make([]int32, len(pending))
	payloads := make([]string, len(pending))
	for i, e := range pending {
		ids[i], types[i], versions[i], payloads[i] = e.ID, e.Type, int32(e.SchemaVersion), string(e.Payload)
	}
	md, err := json.Marshal(pending[0].Metadata)
	if err != nil {
		return nil, fmt.Errorf("append to %s: metadata: %w", stream, err)
	}
	rows, err := q.Query(ctx, appendSQL, stream.ID, stream.Type, ids, types, versions, payloads, string(md), pending[0].Time, expected)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", stream, err)
	}
	out := make([]Event, 0, len(pending))
	for rows.Next() {
		var pos, tx, version int64
		if err := rows.Scan(&pos, &tx, &version); err != nil {
			rows.Close()
			return nil, fmt.Errorf("append to %s: %w", stream, err)
		}
		out = append(out, Event{Position: pos, Tx: tx, Version: version})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_stream_id_version_key" {
			return nil, s.conflict(ctx, stream, expected)
		}
		if errors.As(err, &pgErr) && pgErr.Code == "25P02" {
			// An earlier batch of the same transaction failed: report that.
			return nil, fmt.Errorf("append to %s: %w", stream, err)
		}
		return nil, fmt.Errorf("append to %s: %w", stream, err)
	}
	if len(out) == 0 {
		return nil, s.conflict(ctx, stream, expected)
	}
	if len(out) != len(pending) {
		return nil, fmt.Errorf("append to %s: inserted %d of %d events", stream, len(out), len(pending))
	}
	// RETURNING order is not guaranteed: place rows by version.
	first := out[0].Version
	for _, r := range out {
		first = min(first, r.Version)
	}
	result := make([]Event, len(pending))
	for _, r := range out {
		i := r.Version - first
		e := pending[i]
		e.Position, e.Tx, e.Version = r.Position, r.Tx, r.Version
		result[i] = e
	}
	return result, nil
}

func (s *Store) conflict(ctx context.Context, stream Stream, expected int64) error {
	actual, err := s.Version(ctx, stream.ID)
	if err != nil {
		return fmt.Errorf("append to %s: %w (reading actual version: %v)", stream, ErrConflict, err)
	}
	return &ConflictError{Stream: stream, Expected: expected, Actual: actual}
}

// Version returns the current version of a stream (0 if it has no events).
func (s *Store) Version(ctx context.Context, streamID string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1", streamID).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("version of stream %s: %w", streamID, err)
	}
	return v, nil
}

const eventColumns = `position, tx_id, event_id::text, stream_id, stream_type, version, event_type, schema_version, payload,
	coalesce(metadata->>'actor', ''), coalesce(metadata->>'correlation_id', ''),
	coalesce(metadata->>'causation_id', ''), coalesce(metadata->>'trace_id', ''),
	coalesce(metadata->>'span_id', ''), recorded_at`

func scanEvent(row pgx.Row, e *Event) error {
	var payload []byte
	err := row.Scan(&e.Position, &e.Tx, &e.ID, &e.StreamID, &e.StreamType, &e.Version, &e.Type, &e.SchemaVersion, &payload,
		&e.Metadata.Actor, &e.Metadata.CorrelationID, &e.Metadata.CausationID, &e.Metadata.TraceID, &e.Metadata.SpanID, &e.Time)
	e.Payload = payload
	e.Time = e.Time.UTC()
	return err
}

// Load returns every event of a stream in version order.
func (s *Store) Load(ctx context.Context, streamID string) ([]Event, error) {
	return s.LoadAfter(ctx, streamID, 0)
}

// LoadAfter returns the events of a stream with a version above after.
func (s *Store) LoadAfter(ctx context.Context, streamID string, after int64) ([]Event, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+eventColumns+" FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version", streamID, after)
	if err != nil {
		return nil, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := scanEvent(rows, &e); err != nil {
			return nil, fmt.Errorf("load stream %s: %w", streamID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	return out, nil
}

// querier is what reads need: a pool or a single connection (the relay).
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ReadAll returns up to limit events strictly after `after` in commit order,
// matching f. It returns only events of transactions below the reader's
// snapshot xmin: every transaction that could still commit sorts after them,
// so a reader that resumes from the last cursor it saw never skips an event.
// An empty result means the reader is caught up (for now).
func (s *Store) ReadAll(ctx context.Context, after Cursor, f Filter, limit int) ([]Event, error) {
	events, _, err := readAll(ctx, s.pool, after, f, limit)
	return events, err
}

// readAll also reports whether committed events exist beyond the xmin
// barrier, so a caller knows to look again soon rather than sleep.
func readAll(ctx context.Context, q querier, after Cursor, f Filter, limit int) ([]Event, bool, error) {
	if limit <= 0 {
		limit = 1000
	}
	sql := "SELECT " + eventColumns + ", pg_snapshot_xmin(pg_current_snapshot())::text::bigint FROM events WHERE (tx_id, position) > ($1, $2)"
	args := []any{after.Tx, after.Position}
	for _, c := range []struct{ col, val string }{{"stream_id", f.StreamID}, {"stream_type", f.StreamType}, {"event_type", f.EventType}} {
		if c.val != "" {
			args = append(args, c.val)
			sql += fmt.Sprintf(" AND %s = $%d", c.col, len(args))
		}
	}
	args = append(args, limit)
	sql += fmt.Sprintf(" ORDER BY tx_id, position LIMIT $%d", len(args))
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("read all after %d/%d: %w", after.Tx, after.Position, err)
	}
	defer rows.Close()
	// Grown as rows come: most reads (a follower, a wake-up) find one
	// event or none, and a page-sized slice would be cleared for nothing.
	var out []Event
	blocked := false
	for rows.Next() {
		var e Event
		var payload []byte
		var xmin int64
		if err := rows.Scan(&e.Position, &e.Tx, &e.ID, &e.StreamID, &e.StreamType, &e.Version, &e.Type, &e.SchemaVersion, &payload,
			&e.Metadata.Actor, &e.Metadata.CorrelationID, &e.Metadata.CausationID, &e.Metadata.TraceID, &e.Metadata.SpanID, &e.Time, &xmin); err != nil {
			return nil, false, fmt.Errorf("read all: %w", err)
		}
		if e.Tx >= xmin {
			blocked = true
			break
		}
		e.Payload = payload
		e.Time = e.Time.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read all: %w", err)
	}
	return out, blocked, nil
}

// CursorFrom returns the cursor from which a reader sees the event at global
// position p and everything after it in commit order. p <= 0 gives the zero
// cursor; a p beyond the last event gives the cursor after the last event.
func (s *Store) CursorFrom(ctx context.Context, p int64) (Cursor, error) {
	if p <= 0 {
		return Cursor{}, nil
	}
	var c Cursor
	err := s.pool.QueryRow(ctx, "SELECT tx_id, position FROM events WHERE position >= $1 ORDER BY position LIMIT 1", p).Scan(&c.Tx, &c.Position)
	if err == nil {
		c.Position-- // just before it, in the same transaction
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, fmt.Errorf("cursor from position %d: %w", p, err)
	}
	return s.Head(ctx)
}

// Head returns the cursor of the last committed event (zero if none).
func (s *Store) Head(ctx context.Context) (Cursor, error) {
	var c Cursor
	err := s.pool.QueryRow(ctx, "SELECT tx_id, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1").Scan(&c.Tx, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("head: %w", err)
	}
	return c, nil
}
