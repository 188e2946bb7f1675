package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/services/server/commands"
)

// ScheduleActor is who the schedule loop's events are recorded as.
const ScheduleActor = "system:scheduler"

// ScheduleCommands fires schedules; *commands.System satisfies it.
type ScheduleCommands interface {
	FireSchedule(ctx context.Context, c commands.Caller, id string, tick time.Time) (fired bool, runID string, err error)
}

// SchedulesConfig configures a Schedules loop.
type SchedulesConfig struct {
	// Pool holds the schedules' read model (rm_schedules). Required.
	Pool *pgxpool.Pool
	// Commands fires schedules. Required.
	Commands ScheduleCommands
	// Interval is how often due ticks are looked for. Default 1s (cron
	// has minute resolution; the second bounds how late a tick fires).
	Interval time.Duration
	// Logger receives the loop's log. Default: discard.
	Logger *slog.Logger
	// Now is the clock ticks are due by. Default time.Now.
	Now func() time.Time
}

// Schedules fires the cron schedules (drift detection, scheduled runs and
// tasks) when a tick is due: ScheduleFired with a run id, which a drain
// queues. Any number of loops may run, in any number of scheduler
// processes: a tick is fired by an append at the schedule's version, so
// the loops racing for it fire it once. After an outage the latest missed
// tick fires once (commands.DueTick).
type Schedules struct {
	cfg   SchedulesConfig
	log   *slog.Logger
	fired atomic.Int64
}

// NewSchedules returns a schedule loop; Run starts it.
func NewSchedules(cfg SchedulesConfig) (*Schedules, error) {
	var errs []error
	if cfg.Pool == nil {
		errs = append(errs, errors.New("pool is required"))
	}
	if cfg.Commands == nil {
		errs = append(errs, errors.New("commands are required"))
	}
	if cfg.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %s: must not be negative", cfg.Interval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("schedules config: %w", err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Schedules{cfg: cfg, log: cfg.Logger.With("component", "schedules")}, nil
}

// Fired counts the ticks this loop fired.
func (s *Schedules) Fired() int64 { return s.fired.Load() }

// Run fires due ticks until ctx ends, then returns nil.
func (s *Schedules) Run(ctx context.Context) error {
	s.log.InfoContext(ctx, "schedules started", "interval", s.cfg.Interval)
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	for {
		if err := s.pass(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "schedule pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

type dueSchedule struct {
	id, cron    string
	since, last time.Time
}

// pass fires every schedule with a due tick.
func (s *Schedules) pass(ctx context.Context) error {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT id, cron, since, last_tick FROM rm_schedules`)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dueSchedule, error) {
		var d dueSchedule
		var last *time.Time
		err := r.Scan(&d.id, &d.cron, &d.since, &last)
		if last != nil {
			d.last = *last
		}
		return d, err
	})
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	now := s.cfg.Now()
	var errs []error
	for _, d := range list {
		sched, err := commands.ParseCron(d.cron)
		if err != nil {
			continue // refused when set; a stored one that no longer parses is skipped
		}
		tick, ok := commands.DueTick(sched, d.since, d.last, now)
		if !ok {
			continue
		}
		fired, runID, err := s.cfg.Commands.FireSchedule(ctx, commands.Caller{Actor: ScheduleActor}, d.id, tick)
		if err != nil {
			errs = append(errs, fmt.Errorf("fire schedule %s at %s: %w", d.id, tick, err))
			continue
		}
		if fired {
			s.fired.Add(1)
			s.log.InfoContext(ctx, "schedule fired", "schedule_id", d.id, "tick", tick, "run_id", runID,
				"late", now.Sub(tick).Round(time.Millisecond).String())
		}
	}
	return errors.Join(errs...)
}
