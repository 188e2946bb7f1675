package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gantryhq/gantry/eventstore"
)

// ErrNotCaughtUp is matched by the error of a command whose events were
// appended but whose effect the read models did not show within the read
// timeout. The change is recorded; only reading it back may be stale.
var ErrNotCaughtUp = errors.New("the change was recorded, but the read models did not catch up in time")

// ErrPermissionDenied is matched by errors for commands the caller may not run.
var ErrPermissionDenied = errors.New("permission denied")

// execute runs one command: decide builds a fresh unit of work from freshly
// loaded aggregates and records its decisions in it; execute appends every
// pending event in one AppendAll. When another writer changed one of the
// streams in between (a version conflict), it starts over, up to
// MaxAttempts times; then the *eventstore.ConflictError comes back wrapped.
// After a successful append it waits until the read models include it.
// It returns the appended events (nil when the command changed nothing).
func (s *Service) execute(ctx context.Context, op string, decide func(ctx context.Context, u *unit) error) ([][]eventstore.Event, error) {
	out, err := s.executeNoWait(ctx, op, decide)
	if err != nil || out == nil {
		return out, err
	}
	return out, s.waitRead(ctx, op, out)
}

// executeNoWait is execute without the wait for the read models, for what
// workers report: read-your-writes is for API callers, and a worker's
// report must not stall on a lagging projection.
func (s *Service) executeNoWait(ctx context.Context, op string, decide func(ctx context.Context, u *unit) error) ([][]eventstore.Event, error) {
	for attempt := 1; ; attempt++ {
		u := s.newUnit()
		if err := decide(ctx, u); err != nil {
			return nil, err
		}
		batches := u.batches()
		if len(batches) == 0 {
			return nil, nil
		}
		out, err := s.cfg.Store.AppendAll(ctx, batches...)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, eventstore.ErrConflict) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if attempt >= s.cfg.MaxAttempts {
			return nil, fmt.Errorf("%s: gave up after %d attempts, every one lost to a concurrent change: %w", op, attempt, err)
		}
		s.log.DebugContext(ctx, "command conflict, retrying", "op", op, "attempt", attempt, "err", err)
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// backoff waits a little before another attempt, with jitter, so that
// writers colliding on one stream spread out instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitRead blocks until the read models include the last appended event.
func (s *Service) waitRead(ctx context.Context, op string, appended [][]eventstore.Event) error {
	last := lastCursor(appended)
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	err := s.cfg.Waiter.WaitFor(wctx, last, s.cfg.Projections...)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s: wait for the read models: %w", op, ctx.Err())
	case wctx.Err() != nil:
		s.log.WarnContext(ctx, "read models lag behind a command", "op", op, "position", last.Position, "timeout", s.cfg.ReadTimeout)
		return fmt.Errorf("%s (event position %d): %w", op, last.Position, ErrNotCaughtUp)
	default:
		return fmt.Errorf("%s: wait for the read models: %w", op, err)
	}
}

// lastCursor returns the cursor of the last event in commit order.
func lastCursor(appended [][]eventstore.Event) eventstore.Cursor {
	var last eventstore.Cursor
	for _, batch := range appended {
		for _, e := range batch {
			if last.Before(e.Cursor()) {
				last = e.Cursor()
			}
		}
	}
	return last
}
