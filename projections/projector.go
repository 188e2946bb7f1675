package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/eventstore"
)

// DefaultDurable is the JetStream durable consumer every projector shares.
// Never rename it casually: a new name starts a new consumer.
const DefaultDurable = "projector"

// Config configures a Projector.
type Config struct {
	// Pool is the database of the read models and checkpoints. Each
	// projector transaction also reads events through Store meanwhile, so
	// the pools need a few connections to spare.
	Pool *pgxpool.Pool
	// Store is the event store the events are read from, in commit order;
	// its registry decodes them.
	Store *eventstore.Store
	// NATS carries the relayed events that wake the projector.
	NATS *nats.Conn
	// Projections to maintain (default All()).
	Projections []Projection
	// Durable names the JetStream consumer (default DefaultDurable).
	Durable string
	// BatchSize is how many relayed messages one wake-up takes at most
	// (default 256).
	BatchSize int
	// PageSize is how many events one transaction applies at most (default 1000).
	PageSize int
	// CatchUpInterval is how often the projector catches up with the store
	// whether or not a message came (default 2s).
	CatchUpInterval time.Duration
	// RetryMin and RetryMax bound the backoff of a projection whose events
	// fail to apply (default 200ms and 10s).
	RetryMin, RetryMax time.Duration
	// Logger receives failures and skipped events (default: discard).
	Logger *slog.Logger
}

var durableName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports every problem with the configuration at once. Zero
// values that have defaults are fine.
func (c Config) Validate() error {
	var errs []error
	if c.Pool == nil {
		errs = append(errs, errors.New("pool is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if c.NATS == nil {
		errs = append(errs, errors.New("NATS connection is required"))
	}
	if c.Projections != nil {
		if err := checkProjections(c.Projections); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Durable != "" && !durableName.MatchString(c.Durable) {
		errs = append(errs, fmt.Errorf("durable %q: use 1-64 letters, digits, '_' or '-'", c.Durable))
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"batch size", c.BatchSize}, {"page size", c.PageSize}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", n.name, n.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"catch-up interval", c.CatchUpInterval}, {"retry min", c.RetryMin}, {"retry max", c.RetryMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	if c.RetryMin > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry max %s is below retry min %s", c.RetryMax, c.RetryMin))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("projector config: %w", err)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Projections == nil {
		c.Projections = All()
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.CatchUpInterval == 0 {
		c.CatchUpInterval = 2 * time.Second
	}
	if c.RetryMin == 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(10*time.Second, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Projector keeps projections up to date. It consumes the EVENTS stream as
// a durable pull consumer shared by every projector process: a fetched
// batch of messages is a wake-up and an upper bound, and the events
// themselves are read from the store, in commit order, under each
// projection's checkpoint lock. It also catches up with the store
// periodically, so nothing depends on a message arriving.
type Projector struct {
	cfg Config
	eng *engine
	log *slog.Logger

	// mu serialises catch-ups within the process; across processes the
	// checkpoint row locks do.
	mu    sync.Mutex
	retry map[string]*retryState
}

// retryState is the backoff of a projection whose events failed to apply.
type retryState struct {
	failures int
	due      time.Time
	bo       *backoff.ExponentialBackOff
}

// newBackoff returns the delay of a retry loop: from initial, doubling up
// to limit.
func newBackoff(initial, limit time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: initial, Multiplier: 2, MaxInterval: limit}
}

// NewProjector returns a projector; Run starts it.
func NewProjector(cfg Config) (*Projector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	log := cfg.Logger.With("component", "projector")
	return &Projector{
		cfg:   cfg,
		eng:   &engine{pool: cfg.Pool, store: cfg.Store, log: log, all: cfg.Projections},
		log:   log,
		retry: map[string]*retryState{},
	}, nil
}

// Run projects until ctx ends: it catches up at once, then on every fetched
// batch of messages and every CatchUpInterval. Database and NATS failures
// are logged and retried; it returns nil when ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.consume(ctx) })
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-timer.C:
		}
		p.advance(ctx, unbounded)
		timer.Reset(p.nextCatchUp())
	}
}

// CatchUp brings every projection at least to the store's head as of the
// call (waiting, bounded by ctx, for older transactions still open),
// ignoring any backoff, and returns the failures.
func (p *Projector) CatchUp(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	failed := p.eng.catchUpToHead(ctx, p.cfg.Projections, p.cfg.PageSize)
	p.record(failed, p.cfg.Projections)
	return joinFailures(p.cfg.Projections, failed)
}

// Rebuild empties the named projections' tables (all of the projector's
// when none is named) and replays every event into them; see Rebuild.
func (p *Projector) Rebuild(ctx context.Context, names ...string) error {
	return p.eng.rebuild(ctx, names)
}

// advance moves every projection not backing off to bound. It reports
// whether all of them got there; when not, wait is how long until the next
// one may be retried.
func (p *Projector) advance(ctx context.Context, bound eventstore.Cursor) (ok bool, wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var ready []Projection
	for _, pr := range p.cfg.Projections {
		if r := p.retry[pr.Name()]; r != nil && now.Before(r.due) {
			continue
		}
		ready = append(ready, pr)
	}
	if bound != unbounded {
		// An earlier step got there already: the wake-ups of the other
		// events of a transaction, or of events a catch-up projected first.
		ready = p.eng.behind(ready, bound)
	}
	if len(ready) > 0 {
		p.record(p.eng.catchUp(ctx, ready, bound, p.cfg.PageSize), ready)
	}
	return p.backoffLocked(time.Now())
}

// record updates the backoff of the projections that ran: reset on
// success, doubled on failure (logged with the failing event's position).
func (p *Projector) record(failed map[string]error, ran []Projection) {
	now := time.Now()
	for _, pr := range ran {
		name := pr.Name()
		err := failed[name]
		if err == nil {
			if r := p.retry[name]; r != nil {
				p.log.Info("projection recovered", "projection", name, "after_failures", r.failures)
				delete(p.retry, name)
			}
			continue
		}
		if errors.Is(err, context.Canceled) {
			continue
		}
		r := p.retry[name]
		if r == nil {
			r = &retryState{bo: newBackoff(p.cfg.RetryMin, p.cfg.RetryMax)}
			p.retry[name] = r
		}
		r.failures++
		delay := r.bo.NextBackOff()
		r.due = now.Add(delay)
		p.log.Error("projection failed; retrying", "projection", name, "err", err, "failures", r.failures, "retry_in", delay)
	}
}

// backoffLocked reports whether no projection is backing off and, if one
// is, how long until the first may be retried.
func (p *Projector) backoffLocked(now time.Time) (bool, time.Duration) {
	if len(p.retry) == 0 {
		return true, 0
	}
	wait := time.Duration(-1)
	for _, r := range p.retry {
		if d := r.due.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	return false, max(wait, 0)
}

// nextCatchUp is when the periodic catch-up runs again: after the interval,
// or sooner when a failed projection's retry is due.
func (p *Projector) nextCatchUp() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok, wait := p.backoffLocked(time.Now())
	if ok {
		return p.cfg.CatchUpInterval
	}
	return min(max(wait, time.Millisecond), p.cfg.CatchUpInterval)
}
