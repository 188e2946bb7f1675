package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// maxReadWait bounds how long GetRun waits for the read models to include
// the event a client names (GetRunRequest.min_cursor).
const maxReadWait = 10 * time.Second

// errReadLag says the read models did not include an event in time; the
// client may ask again.
var errReadLag = errors.New("the read models have not caught up with that event yet; try again")

// ReadWaiter blocks until the named projections include the event at a
// cursor; *projections.Waiter satisfies it.
type ReadWaiter interface {
	WaitFor(ctx context.Context, c eventstore.Cursor, names ...string) error
}

// WithReadWaiter lets GetRun wait for an event a client has seen (its
// min_cursor), and returns s.
func (s *RunService) WithReadWaiter(w ReadWaiter) *RunService {
	s.reads = w
	return s
}

// waitForEvent returns once the runs read model includes the event at c,
// or the Connect error saying why it did not.
func (s *RunService) waitForEvent(ctx context.Context, c *gantryv1.EventCursor) error {
	if c.GetTx() <= 0 || c.GetPosition() <= 0 {
		return s.fail(&invalidArgumentError{field: "min_cursor",
			reason: fmt.Sprintf("tx and position must be those of an event (both positive), got %d and %d", c.GetTx(), c.GetPosition())})
	}
	if s.reads == nil {
		return connect.NewError(connect.CodeUnimplemented, errors.New("this server cannot wait for the read models (min_cursor)"))
	}
	wctx, cancel := context.WithTimeout(ctx, maxReadWait)
	defer cancel()
	err := s.reads.WaitFor(wctx, eventstore.Cursor{Tx: c.GetTx(), Position: c.GetPosition()}, projections.RunsName)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return s.fail(ctx.Err())
	case wctx.Err() != nil:
		return s.fail(fmt.Errorf("get run after event %d/%d: %w: %w", c.GetTx(), c.GetPosition(), errReadLag, err))
	default:
		return s.fail(fmt.Errorf("get run after event %d/%d: %w", c.GetTx(), c.GetPosition(), err))
	}
}
