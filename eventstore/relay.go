package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// EventsStream is the JetStream stream every committed event is published to.
const EventsStream = "EVENTS"

// SubjectPrefix starts the subject of every published event.
const SubjectPrefix = "gantry.events"

// Headers set on every published event besides Nats-Msg-Id.
const (
	HeaderPosition = "Gantry-Position"
	HeaderTx       = "Gantry-Tx"
)

// relayCheckpoint names the relay's row in the checkpoints table.
const relayCheckpoint = "relay"

// relayLockKey is the advisory lock that keeps one relay active at a time.
const relayLockKey = 0x67616e7472790002

// Subject returns the JetStream subject of an event:
// gantry.events.<stream type>.<stream id>.<event type>.
func Subject(e Event) string {
	return SubjectPrefix + "." + e.StreamType + "." + e.StreamID + "." + e.Type
}

// DecodeMessage turns a relayed JetStream message body back into an Event.
func DecodeMessage(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decode relayed event: %w", err)
	}
	return e, nil
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Storage of the EVENTS stream when the relay creates it (default file).
	Storage jetstream.StorageType
	// Replicas of the EVENTS stream (default 1).
	Replicas int
	// DuplicateWindow within which JetStream drops a re-published event (default 10m).
	DuplicateWindow time.Duration
	// BatchSize is how many events are read and published at once (default 500).
	BatchSize int
	// PollInterval is the fallback when no notification arrives (default 1s).
	PollInterval time.Duration
	// StandbyInterval is how often a standby relay tries to become active (default 2s).
	StandbyInterval time.Duration
	Logger          *slog.Logger
	// TracerProvider traces the publish of every event that was appended
	// under a sampled span, as a child of that span. Nil: no tracing.
	TracerProvider trace.TracerProvider
}

func (c *RelayConfig) defaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.StandbyInterval == 0 {
		c.StandbyInterval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Relay publishes committed events, in commit order, to the EVENTS stream.
// It advances its checkpoint only after JetStream acknowledged every event
// of a batch, so a crash republishes (and JetStream drops the duplicates by
// Nats-Msg-Id) rather than loses. Only the relay holding the advisory lock
// publishes; others stand by.
type Relay struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	cfg    RelayConfig
	log    *slog.Logger
	active atomic.Bool
	tracer trace.Tracer // nil: tracing off
}

// NewRelay returns a relay reading from pool and publishing through nc.
func NewRelay(pool *pgxpool.Pool, nc *nats.Conn, cfg RelayConfig) (*Relay, error) {
	cfg.defaults()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("relay: jetstream: %w", err)
	}
	r := &Relay{pool: pool, js: js, cfg: cfg, log: cfg.Logger.With("component", "relay")}
	if cfg.TracerProvider != nil {
		r.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	return r, nil
}

// Active reports whether this relay currently holds the lock and publishes.
func (r *Relay) Active() bool { return r.active.Load() }

var errStandby = errors.New("another relay is active")

// Run relays until ctx ends. Database and NATS failures are retried with
// backoff; it never returns before ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := r.session(ctx, bo)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errStandby) {
			sleep(ctx, r.cfg.StandbyInterval)
			continue
		}
		r.log.Warn("relay session ended", "err", err)
		sleep(ctx, bo.NextBackOff())
	}
	return nil
}

// session holds one database connection: the advisory lock is tied to it, so
// losing the connection always ends the session and gives up the lock.
func (r *Relay) session(ctx context.Context, bo backoff.BackOff) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer func() {
		// Closing drops the session lock and LISTEN with the connection.
		conn.Conn().Close(context.Background())
		conn.Release()
	}()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(relayLockKey)).Scan(&locked); err != nil {
		return fmt.Errorf("try relay lock: %w", err)
	}
	if !locked {
		return errStandby
	}
	r.active.Store(true)
	defer r.active.Store(false)
	r.log.Info("relay active")
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cursor, err := loadCheckpoint(ctx, conn, relayCheckpoint)
	if err != nil {
		return err
	}
	streamReady := r.ensureStream(ctx) == nil
	for {
		events, blocked, err := readAll(ctx, conn, cursor, Filter{}, r.cfg.BatchSize)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			if err := r.publishUntilAcked(ctx, events, &streamReady); err != nil {
				return err
			}
			last := events[len(events)-1]
			if err := saveCheckpoint(ctx, conn, relayCheckpoint, last); err != nil {
				return err
			}
			cursor = last.Cursor()
			bo.Reset()
			if len(events) == r.cfg.BatchSize {
				continue
			}
		}
		wait := r.cfg.PollInterval
		if blocked {
			// Committed events wait behind an older open transaction, which
			// may not notify when it ends: look again soon.
			wait = 2 * time.Millisecond
		}
		if err := waitNotification(ctx, conn, wait); err != nil {
			return err
		}
	}
}

// waitNotification returns when a notification arrives or wait passes.
func waitNotification(ctx context.Context, conn *pgxpool.Conn, wait time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := conn.Conn().WaitForNotification(wctx)
	if err == nil || (ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded)) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("wait for notification: %w", err)
}

// publishUntilAcked publishes a batch, retrying the whole batch (JetStream
// drops what it already stored) until every event is acknowledged or ctx ends.
func (r *Relay) publishUntilAcked(ctx context.Context, events []Event, streamReady *bool) error {
	bo := newBackoff(50*time.Millisecond, 2*time.Second)
	for {
		if !*streamReady {
			if err := r.ensureStream(ctx); err != nil {
				r.log.Warn("relay: ensure stream", "err", err)
			} else {
				*streamReady = true
			}
		}
		if *streamReady {
			err := r.publish(ctx, events)
			if err == nil {
				return nil
			}
			r.log.Warn("relay: publish", "err", err, "from_position", events[0].Position, "count", len(events))
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) {
				*streamReady = false
			}
		}
		sleep(ctx, bo.NextBackOff())
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// EnsureStream creates the EVENTS stream, or updates its configuration,
// as the active relay does. A process can call it at start so that its
// consumers find the stream before the relay has taken its lock.
func (r *Relay) EnsureStream(ctx context.Context) error { return r.ensureStream(ctx) }

func (r *Relay) ensureStream(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	want := jetstream.StreamConfig{
		Name:       EventsStream,
		Subjects:   []string{SubjectPrefix + ".>"},
		Storage:    r.cfg.Storage,
		Replicas:   r.cfg.Replicas,
		Duplicates: r.cfg.DuplicateWindow,
		Retention:  jetstream.LimitsPolicy,
	}
	// An update of a stream that is already right is skipped: every
	// process calls this at start, and an update races with consumers
	// being created inside nats-server.
	if st, err := r.js.Stream(cctx, EventsStream); err == nil {
		have := st.CachedInfo().Config
		if slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage && have.Replicas == want.Replicas &&
			have.Duplicates == want.Duplicates && have.Retention == want.Retention {
			return nil
		}
	}
	_, err := r.js.CreateOrUpdateStream(cctx, want)
	return err
}

// publish sends the batch pipelined and waits for every acknowledgement.
// Messages of one connection are stored in the order sent, and the bus
// connection does not buffer while reconnecting, so a failure can only cut
// the batch short, never reorder it; the retry republishes from its start.
func (r *Relay) publish(ctx context.Context, events []Event) (err error) {
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	spans := r.startSpans(ctx, events)
	defer func() { endSpans(spans, err) }()
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		msg := nats.NewMsg(Subject(e))
		msg.Data = data
		msg.Header.Set(HeaderPosition, strconv.FormatInt(e.Position, 10))
		msg.Header.Set(HeaderTx, strconv.FormatInt(e.Tx, 10))
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID))
		if err != nil {
			return fmt.Errorf("publish event %d: %w", e.Position, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish event %d: %w", events[i].Position, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// startSpans starts the publish span of every event appended under a
// sampled span, as its child; nil when tracing is off.
func (r *Relay) startSpans(ctx context.Context, events []Event) []trace.Span {
	if r.tracer == nil {
		return nil
	}
	var spans []trace.Span
	for _, e := range events {
		sc := e.Metadata.SpanContext()
		if !sc.IsValid() {
			continue
		}
		_, span := r.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, sc), "relay.publish",
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", Subject(e)),
				attribute.String("messaging.message.id", e.ID), attribute.Int64("gantry.position", e.Position)))
		spans = append(spans, span)
	}
	return spans
}

// endSpans ends publish spans once the batch is acknowledged, or failed.
func endSpans(spans []trace.Span, err error) {
	for _, s := range spans {
		if err != nil {
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

func loadCheckpoint(ctx context.Context, q querier, name string) (Cursor, error) {
	var c Cursor
	err := q.QueryRow(ctx, "SELECT tx_id, position FROM checkpoints WHERE name = $1", name).Scan(&c.Tx, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	return c, nil
}

// saveCheckpoint records that the relay has published up to last.
//
// The save commits without waiting for its WAL flush, in one round trip: a
// crash may lose the last saves, and the relay then publishes those events
// again, which JetStream (by message id) and every consumer (by position)
// drop as duplicates. The events themselves were committed durably.
func saveCheckpoint(ctx context.Context, conn *pgxpool.Conn, name string, last Event) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(`INSERT INTO checkpoints (name, tx_id, position, event_id, updated_at) VALUES ($1, $2, $3, $4, now())
		ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position, event_id = excluded.event_id, updated_at = now()`,
		name, last.Tx, last.Position, last.ID)
	b.Queue("COMMIT")
	err := conn.SendBatch(ctx, b).Close()
	if err == nil && conn.Conn().PgConn().TxStatus() != 'I' {
		err = errors.New("the transaction is still open")
	}
	if err != nil {
		if !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return fmt.Errorf("save checkpoint %s at %d: %w", name, last.Position, err)
	}
	return nil
}

// RelayCheckpoint returns the cursor up to which the relay has published.
func (s *Store) RelayCheckpoint(ctx context.Context) (Cursor, error) {
	return loadCheckpoint(ctx, s.pool, relayCheckpoint)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
