package projections

import (
	"context"
	"time"
)

// backoff is an exponential delay for retry loops.
type backoff struct {
	cur, min, max time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// wait sleeps the current delay, or until ctx ends, and doubles it.
func (b *backoff) wait(ctx context.Context) {
	b.cur = min(max(b.cur*2, b.min), b.max)
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
