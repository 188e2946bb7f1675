package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gantryhq/gantry/domain/name"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// SystemConfig configures a System.
type SystemConfig struct {
	// Aggregates loads the aggregates and appends their events; the
	// process's one repository. Required.
	Aggregates *aggregate.Repository
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the command log. Default: discard.
	Logger *slog.Logger
	// MaxAttempts bounds the tries of a command that keeps meeting
	// concurrent writers. Default: the repository's.
	MaxAttempts int
}

// System executes the commands Gantry's own components decide and that
// need nothing but the event store: run assignment, the scheduler's. A
// process that only schedules (gantry scheduler) runs one without the
// secrets keeper, the pool CA and the read models an API command needs;
// Service includes it. It is safe for concurrent use.
type System struct {
	aggs        *aggregate.Repository
	clock       func() time.Time
	log         *slog.Logger
	maxAttempts int
}

// NewSystem returns a System. The repository's registry must know every
// domain event (eventstore.DomainRegistry).
func NewSystem(cfg SystemConfig) (*System, error) {
	var errs []error
	if cfg.Aggregates == nil {
		errs = append(errs, errors.New("aggregates: required"))
	} else {
		for _, e := range name.Events() {
			if _, _, err := cfg.Aggregates.Registry().TypeOf(e); err != nil {
				errs = append(errs, fmt.Errorf("the store's registry lacks the name reservation events (build it with eventstore.DomainRegistry): %w", err))
				break
			}
		}
	}
	if cfg.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d: must not be negative", cfg.MaxAttempts))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &System{aggs: cfg.Aggregates, clock: cfg.Now, log: cfg.Logger.With("component", "commands"), maxAttempts: cfg.MaxAttempts}, nil
}

// now returns the command time: UTC, at the store's microsecond precision,
// so that the times in events equal the times read back.
func (s *System) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// executeNoWait runs one command through the repository (see
// aggregate.Repository.Execute) and returns the appended events, nil when
// the command changed nothing. It does not wait for the read models: that
// is for API callers (Service.execute), and neither a worker's report nor
// an assignment may stall on a lagging projection.
func (s *System) executeNoWait(ctx context.Context, op string, decide aggregate.Decision) ([][]eventstore.Event, error) {
	return s.aggs.Execute(ctx, op, decide, aggregate.MaxAttempts(s.maxAttempts))
}
