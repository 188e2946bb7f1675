package aggregate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/gantryhq/gantry/eventstore"
)

// Decision is a command's logic for one attempt: it loads the aggregates
// it needs with Get and decides on them with Root.Do; an error refuses the
// command and appends nothing.
type Decision func(ctx context.Context, u *Unit) error

// Option changes how Execute runs one command.
type Option func(*execution)

type execution struct{ maxAttempts int }

// MaxAttempts bounds the tries of this command instead of the repository's
// Config.MaxAttempts.
func MaxAttempts(n int) Option {
	return func(e *execution) {
		if n > 0 {
			e.maxAttempts = n
		}
	}
}

// The pauses between attempts: up to 2 ms after the first conflict, doubling
// up to 64 ms, each drawn at random from [0, 2×interval) so that writers
// colliding on one stream spread out instead of colliding again.
const (
	firstPause  = time.Millisecond
	longestHalf = 32 * time.Millisecond
)

// Execute runs one command. Each attempt starts a fresh unit of work, lets
// decide load and decide on its aggregates, and appends every pending event
// in one AppendAll at the versions loaded. When another writer changed one
// of the streams in between (eventstore.ErrConflict) it pauses and starts
// over, so the next attempt decides on what changed, up to the attempts
// bound; then the conflict comes back wrapped, naming op. An error of decide
// is returned as it is; any other error of the append is wrapped with op.
// It returns the appended events by batch, nil when the command changed
// nothing.
func (r *Repository) Execute(ctx context.Context, op string, decide Decision, opts ...Option) ([][]eventstore.Event, error) {
	x := execution{maxAttempts: r.cfg.MaxAttempts}
	for _, o := range opts {
		o(&x)
	}
	attempts, lost := 0, false
	attempt := func() ([][]eventstore.Event, error) {
		attempts, lost = attempts+1, false
		u := &Unit{r: r, byID: map[string]any{}}
		if err := decide(ctx, u); err != nil {
			return nil, backoff.Permanent(err)
		}
		batches := u.batches()
		if len(batches) == 0 {
			return nil, nil
		}
		out, err := r.store.AppendAll(ctx, batches...)
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, eventstore.ErrConflict):
			lost = true
			return nil, err
		}
		return nil, backoff.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	pauses := &backoff.ExponentialBackOff{InitialInterval: firstPause, RandomizationFactor: 1, Multiplier: 2, MaxInterval: longestHalf}
	out, err := backoff.Retry(ctx, attempt,
		backoff.WithBackOff(pauses),
		backoff.WithMaxTries(uint(x.maxAttempts)),
		backoff.WithMaxElapsedTime(0), // bounded by the attempts, not by time
		backoff.WithNotify(func(err error, pause time.Duration) {
			r.log.DebugContext(ctx, "command lost to a concurrent change, retrying", "op", op, "attempt", attempts, "pause", pause, "err", err)
		}))
	// The last attempt's error comes back as it was returned, still marked
	// permanent; callers see the error itself.
	var permanent *backoff.PermanentError
	if errors.As(err, &permanent) {
		err = permanent.Unwrap()
	}
	if err != nil && lost && attempts >= x.maxAttempts {
		return nil, fmt.Errorf("%s: gave up after %d attempts, every one lost to a concurrent change: %w", op, attempts, err)
	}
	return out, err
}
