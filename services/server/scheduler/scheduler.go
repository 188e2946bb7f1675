// Package scheduler assigns READY (and CONFIRMED) runs to idle, undrained
// workers of the run's pool: tracked runs and tasks first, then proposed
// runs, then drift detection, first queued first within each class.
//
// Candidates are found in the read models (rm_runs, rm_workers) and in the
// ids of the events that woke the scheduler (the read models may lag), but
// every decision is made on the run and worker aggregates loaded from the
// event store: an assignment is the command layer's AssignRun, one
// AppendAll of RunAssigned and WorkerRunAssigned at the versions loaded.
// Any number of schedulers may run at once: the expected versions, not
// leader election, keep a run from going to two workers and a worker from
// getting two runs. The assigned worker is told at once over NATS (push
// pick-up).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/metrics"
	"github.com/gantryhq/gantry/services/platform/tracing"
)

// DefaultActor is who the scheduler's events are recorded as.
const DefaultActor = "system:scheduler"

// Config configures a Scheduler.
type Config struct {
	// Pool is the database holding the read models (rm_runs, rm_workers). Required.
	Pool *pgxpool.Pool
	// Aggregates loads the runs, stacks and workers that events name, to
	// check them before the read models show them; the process's one
	// aggregate repository. Required.
	Aggregates *aggregate.Repository
	// Commands records assignments: a *commands.System (or Service) on the
	// same repository. Required.
	Commands Commands
	// NATS carries the relayed events that wake the scheduler and the
	// assignments sent to workers. Required.
	NATS *nats.Conn
	// Logger receives the scheduler's log. Default: discard.
	Logger *slog.Logger
	// SweepInterval is how often the scheduler looks for work whether or not
	// an event woke it, so that nothing depends on one message. Default 1s.
	SweepInterval time.Duration
	// CandidatesPerPool bounds how many waiting runs of one pool a pass
	// considers. Default 256.
	CandidatesPerPool int
	// HintTTL is how long the id of a run or worker named by an event stays
	// a candidate while the read models may not show it yet. Default 10s.
	HintTTL time.Duration
	// Actor is recorded on the scheduler's events. Default DefaultActor.
	Actor string
	// Now is the clock of the hints' expiry. Default time.Now. The times of
	// events are the command layer's clock.
	Now func() time.Time
	// Metrics receives the scheduler's counters and the runs' pick-up
	// latency. Nil: not exported.
	Metrics *metrics.Registry
	// TracerProvider traces each assignment as part of the run's trace
	// (the trace of the call that queued it), and sends the trace to the
	// worker with the assignment. Nil: no tracing.
	TracerProvider trace.TracerProvider
}

// Validate reports every missing or bad setting at once.
func (c Config) Validate() error {
	var errs []error
	if c.Pool == nil {
		errs = append(errs, errors.New("pool is required"))
	}
	if c.Aggregates == nil {
		errs = append(errs, errors.New("aggregate store is required"))
	}
	if c.Commands == nil {
		errs = append(errs, errors.New("commands are required"))
	}
	if c.NATS == nil {
		errs = append(errs, errors.New("NATS connection is required"))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("sweep interval %s: must not be negative", c.SweepInterval))
	}
	if c.HintTTL < 0 {
		errs = append(errs, fmt.Errorf("hint TTL %s: must not be negative", c.HintTTL))
	}
	if c.CandidatesPerPool < 0 {
		errs = append(errs, fmt.Errorf("candidates per pool %d: must not be negative", c.CandidatesPerPool))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scheduler config: %w", err)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.CandidatesPerPool == 0 {
		c.CandidatesPerPool = 256
	}
	if c.HintTTL == 0 {
		c.HintTTL = 10 * time.Second
	}
	if strings.TrimSpace(c.Actor) == "" {
		c.Actor = DefaultActor
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Scheduler assigns waiting runs to idle workers; Run starts it.
type Scheduler struct {
	cfg   Config
	log   *slog.Logger
	hints *hints
	wake  chan struct{}

	passes   atomic.Int64
	assigned atomic.Int64
	m        instruments
	tracer   trace.Tracer // nil: tracing off

	runMu sync.Mutex // one Run at a time
	// subs are the running Run's subscriptions, for tests to drop.
	subsMu sync.Mutex
	subs   []*nats.Subscription
}

// New returns a scheduler; Run starts it.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	m, err := newInstruments(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	s := &Scheduler{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "scheduler"),
		hints: newHints(cfg.HintTTL),
		wake:  make(chan struct{}, 1),
		m:     m,
	}
	if cfg.TracerProvider != nil {
		s.tracer = tracing.Tracer(cfg.TracerProvider, "scheduler")
	}
	return s, nil
}

// Passes counts the scheduling passes started so far.
func (s *Scheduler) Passes() int64 { return s.passes.Load() }

// Assigned counts the assignments this scheduler appended.
func (s *Scheduler) Assigned() int64 { return s.assigned.Load() }

// wakeSubjects are the relayed events after which a run may be assignable.
var wakeSubjects = []string{
	eventstore.SubjectPrefix + "." + eventstore.StreamRun + ".*.RunReady",
	eventstore.SubjectPrefix + "." + eventstore.StreamRun + ".*.RunConfirmed",
	eventstore.SubjectPrefix + "." + eventstore.StreamRun + ".*.RunUnassigned",
	eventstore.SubjectPrefix + "." + eventstore.StreamRun + ".*.RunHandedBack",
	eventstore.SubjectPrefix + "." + eventstore.StreamWorker + ".*.WorkerRegistered",
	eventstore.SubjectPrefix + "." + eventstore.StreamWorker + ".*.WorkerRunFinished",
	eventstore.SubjectPrefix + "." + eventstore.StreamWorker + ".*.WorkerUndrained",
	eventstore.SubjectPrefix + "." + eventstore.StreamStack + ".*.StackSettingsUpdated",
}

// Run schedules until ctx ends, then returns nil. It listens to the relayed
// events on core NATS subscriptions (every replica sees every event and
// races for the work, which the expected versions arbitrate) and sweeps
// every SweepInterval in case a message was missed. It fails when a
// subscription closes, for its supervisor to run it again.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.runMu.TryLock() {
		return errors.New("scheduler: already running")
	}
	defer s.runMu.Unlock()
	subs := make([]*nats.Subscription, 0, len(wakeSubjects))
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	for _, subject := range wakeSubjects {
		sub, err := s.cfg.NATS.Subscribe(subject, s.onEvent)
		if err != nil {
			return fmt.Errorf("scheduler: subscribe to %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	lost := bus.WatchClosed(subs...)
	s.setSubs(subs)
	defer s.setSubs(nil)
	// Subscriptions survive reconnects; a server that is not reachable yet
	// only delays the wake-ups, the sweep still runs.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := s.cfg.NATS.FlushWithContext(fctx); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "NATS did not confirm the subscriptions; relying on the sweep meanwhile", "err", err)
	}
	cancel()
	s.log.InfoContext(ctx, "scheduler started", "sweep_interval", s.cfg.SweepInterval)
	ticker := time.NewTicker(s.cfg.SweepInterval)
	defer ticker.Stop()
	s.poke() // look for work left from before the start
	for {
		select {
		case <-ctx.Done():
			s.log.InfoContext(ctx, "scheduler stopped", "assigned", s.assigned.Load())
			return nil
		case subject := <-lost:
			return fmt.Errorf("scheduler: subscription to %s closed", subject)
		case <-s.wake:
		case <-ticker.C:
		}
		again, err := s.pass(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.log.WarnContext(ctx, "scheduling pass failed", "err", err)
		case again:
			s.poke()
		}
	}
}

func (s *Scheduler) setSubs(subs []*nats.Subscription) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	s.subs = subs
}

// onEvent records the aggregate an event names as a candidate and wakes
// the loop. Subjects are gantry.events.<stream type>.<stream id>.<event type>.
func (s *Scheduler) onEvent(m *nats.Msg) {
	parts := strings.Split(strings.TrimPrefix(m.Subject, eventstore.SubjectPrefix+"."), ".")
	if len(parts) == 3 {
		switch parts[0] {
		case eventstore.StreamRun:
			s.hints.addRun(parts[1], s.cfg.Now())
		case eventstore.StreamWorker:
			s.hints.addWorker(parts[1], s.cfg.Now())
		}
	}
	s.poke()
}

// poke asks the loop for a pass without blocking; wake-ups coalesce.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
