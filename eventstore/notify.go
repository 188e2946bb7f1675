package eventstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notifier sends NOTIFY after appends, outside the appending transaction:
// a NOTIFY inside it would serialise every committing appender on
// PostgreSQL's notification queue lock. Pokes that arrive while a NOTIFY is
// being sent coalesce into one more, so a burst of appends costs two.
type notifier struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func startNotifier(pool *pgxpool.Pool, log *slog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{pool: pool, log: log, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go n.run(ctx)
	return n
}

func (n *notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		// Readers also poll, so a failed NOTIFY delays them; it loses nothing.
		if _, err := n.pool.Exec(ctx, "SELECT pg_notify($1, '')", notifyChannel); err != nil && ctx.Err() == nil {
			n.log.Warn("notify readers", "err", err)
		}
	}
}

func (n *notifier) stop() {
	n.cancel()
	<-n.done
}

// Watcher wakes the followers of a process when events were appended,
// through one LISTEN connection shared by all of them.
type Watcher struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu      sync.Mutex
	changed chan struct{}
}

// NewWatcher returns a watcher; Run must be running for it to wake anyone.
func NewWatcher(pool *pgxpool.Pool, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{pool: pool, log: log, changed: make(chan struct{})}
}

// Changed returns a channel closed at the next notification (or reconnect).
// Take it before reading, so a wake-up between the read and the wait is not
// lost; followers should still poll as a fallback.
func (w *Watcher) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

func (w *Watcher) broadcast() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// Run listens until ctx ends, reconnecting with backoff after failures.
func (w *Watcher) Run(ctx context.Context) error {
	bo := newBackoff(50*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := w.listen(ctx, bo)
		if ctx.Err() != nil {
			break
		}
		w.log.Warn("event watcher lost its connection", "err", err)
		sleep(ctx, bo.NextBackOff())
	}
	return nil
}

func (w *Watcher) listen(ctx context.Context, bo backoff.BackOff) error {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A LISTEN connection must not go back to the pool still listening.
	defer func() {
		conn.Conn().Close(context.Background())
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	bo.Reset()
	// Anything appended while we were not listening must be read now.
	w.broadcast()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		w.broadcast()
	}
}

// newBackoff returns the delay of a reconnect loop: from initial, doubling
// up to limit.
func newBackoff(initial, limit time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: initial, Multiplier: 2, MaxInterval: limit}
}
