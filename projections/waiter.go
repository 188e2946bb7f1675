package projections

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
)

// WaitPollInterval is how often WaitFor reads the checkpoints itself, in
// case a notification is late or lost.
const WaitPollInterval = 50 * time.Millisecond

// Waiter lets a writer wait until projections include an event it
// appended: read-your-writes. One Waiter per process shares one LISTEN
// connection among all its callers; Run must be running for notifications
// to wake them (without it they still poll).
type Waiter struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	names []string

	mu   sync.Mutex
	seen map[string]eventstore.Cursor // checkpoints read at the last notification
	wake chan struct{}                // closed and replaced when seen changes
}

// NewWaiter returns a waiter for the named projections (those of All()
// when none is named).
func NewWaiter(pool *pgxpool.Pool, logger *slog.Logger, names ...string) *Waiter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(names) == 0 {
		names = Names()
	}
	return &Waiter{pool: pool, log: logger.With("component", "projection-waiter"), names: slices.Clone(names), wake: make(chan struct{})}
}

// WaitFor returns when the checkpoint of every named projection (every
// projection of the waiter when none is named) is at or after c in commit
// order, so that their tables include the event at c. It returns an error
// when ctx ends first, saying which projections lag.
func (w *Waiter) WaitFor(ctx context.Context, c eventstore.Cursor, names ...string) error {
	if len(names) == 0 {
		names = w.names
	}
	for _, n := range names {
		if !slices.Contains(w.names, n) {
			return fmt.Errorf("wait for projections: %w %s: the projections are %s", ErrUnknownProjection, n, strings.Join(w.names, ", "))
		}
	}
	if c == (eventstore.Cursor{}) {
		return nil
	}
	// Take the wake-up channel before reading, so that a notification
	// arriving in between is not lost.
	wake, _ := w.current()
	cps, err := readCheckpoints(ctx, w.pool, names)
	if err == nil && reached(cps, names, c) {
		return nil
	}
	poll := time.NewTicker(WaitPollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.timeout(ctx, c, names, cps)
		case <-wake:
			// Run read the checkpoints once for every waiter.
			var seen map[string]eventstore.Cursor
			if wake, seen = w.current(); seen != nil {
				cps = seen
			}
			if reached(cps, names, c) {
				return nil
			}
		case <-poll.C:
			var fresh map[string]eventstore.Cursor
			fresh, err = readCheckpoints(ctx, w.pool, names)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("read projection checkpoints", "err", err)
				}
				continue
			}
			cps = fresh
			if reached(cps, names, c) {
				return nil
			}
		}
	}
}

// reached reports whether the checkpoint of every one of names in cps is
// at or after c.
func reached(cps map[string]eventstore.Cursor, names []string, c eventstore.Cursor) bool {
	for _, n := range names {
		if cp, ok := cps[n]; !ok || cp.Before(c) {
			return false
		}
	}
	return true
}

func (w *Waiter) timeout(ctx context.Context, c eventstore.Cursor, names []string, cps map[string]eventstore.Cursor) error {
	var lag []string
	for _, n := range names {
		if cp, ok := cps[n]; !ok || cp.Before(c) {
			lag = append(lag, fmt.Sprintf("%s at %d/%d", n, cp.Tx, cp.Position))
		}
	}
	return fmt.Errorf("wait for projections to reach %d/%d (lagging: %s): %w", c.Tx, c.Position, strings.Join(lag, ", "), context.Cause(ctx))
}

func (w *Waiter) current() (<-chan struct{}, map[string]eventstore.Cursor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake, w.seen
}

// refresh reads every checkpoint once and wakes all waiters with it.
func (w *Waiter) refresh(ctx context.Context) error {
	cps, err := readCheckpoints(ctx, w.pool, w.names)
	if err != nil {
		return err
	}
	w.publish(func(map[string]eventstore.Cursor) map[string]eventstore.Cursor { return cps })
	return nil
}

// notified takes the checkpoints a projector's notification carries and
// wakes all waiters with them; a payload it cannot read (from another
// version) makes it read every checkpoint instead.
func (w *Waiter) notified(ctx context.Context, payload string) error {
	moved, ok := parseCheckpointNotice(payload)
	if !ok {
		return w.refresh(ctx)
	}
	w.publish(func(seen map[string]eventstore.Cursor) map[string]eventstore.Cursor {
		next := maps.Clone(seen)
		if next == nil {
			next = map[string]eventstore.Cursor{}
		}
		for name, c := range moved {
			if slices.Contains(w.names, name) {
				next[name] = c
			}
		}
		return next
	})
	return nil
}

// publish replaces seen with what update makes of it (never changing the
// map it is given: waiters read it without the lock) and wakes the waiters.
func (w *Waiter) publish(update func(map[string]eventstore.Cursor) map[string]eventstore.Cursor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = update(w.seen)
	close(w.wake)
	w.wake = make(chan struct{})
}

// Run listens for projectors' notifications until ctx ends, reconnecting
// with backoff after failures. It returns nil when ctx ends.
func (w *Waiter) Run(ctx context.Context) error {
	bo := newBackoff(50*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := w.listen(ctx, bo)
		if ctx.Err() != nil {
			break
		}
		w.log.Warn("projection waiter lost its connection; reconnecting", "err", err)
		sleep(ctx, bo.NextBackOff())
	}
	return nil
}

func (w *Waiter) listen(ctx context.Context, bo backoff.BackOff) error {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	// A listening connection must not go back to the pool.
	defer func() {
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	bo.Reset()
	// Checkpoints may have moved while nobody listened.
	if err := w.refresh(ctx); err != nil {
		return err
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if err := w.notified(ctx, n.Payload); err != nil {
			return err
		}
	}
}
