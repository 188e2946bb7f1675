package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// ErrNotCaughtUp is matched by the error of a command whose events were
// appended but whose effect the read models did not show within the read
// timeout. The change is recorded; only reading it back may be stale.
var ErrNotCaughtUp = errors.New("the change was recorded, but the read models did not catch up in time")

// ErrPermissionDenied is matched by errors for commands the caller may not run.
var ErrPermissionDenied = errors.New("permission denied")

// execute runs one command (executeNoWait) and, after a successful
// append, waits until the read models include it. It returns the appended
// events (nil when the command changed nothing).
func (s *Service) execute(ctx context.Context, op string, decide aggregate.Decision) ([][]eventstore.Event, error) {
	out, err := s.executeNoWait(ctx, op, decide)
	if err != nil || out == nil {
		return out, err
	}
	return out, s.waitRead(ctx, op, out)
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
