// Package supervisor keeps the long-running loops of a process running, as
// leg100/otf's daemon subsystems do: a loop that fails is logged with its
// component's name and restarted with exponential backoff, and a loop that
// cannot start at all stops the process.
//
// A component fails when its Run returns while the supervisor's context is
// alive, with an error or without one. It cannot start when either
//   - it fails with an error wrapped by Permanent (bad configuration, a
//     listener that is gone: nothing a restart can mend), or
//   - none of its runs has lasted StartWindow, and it fails again once
//     StartWindow has passed since its first run (a loop that keeps failing
//     to subscribe, say).
//
// Then every component is stopped and Run returns an error naming it, for
// the process to exit non-zero rather than go on without it. A component
// that once ran for StartWindow has started: from then on it is restarted
// for as long as the process runs.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
)

// Defaults of Config.
const (
	DefaultStartWindow = 30 * time.Second
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
)

// Component is one long-running loop of a process.
type Component struct {
	// Name identifies the component in the log ("component" attribute) and
	// in errors.
	Name string
	// Run works until ctx ends and then returns. Returning earlier is a
	// failure; an error wrapped by Permanent says a restart cannot help.
	Run func(ctx context.Context) error
}

// Config tunes a supervisor; zero values take the defaults.
type Config struct {
	// Logger receives every failure and restart. Default: discard.
	Logger *slog.Logger
	// StartWindow is how long a component has to start: a run that lasts
	// this long counts as started and resets the backoff (default 30s).
	StartWindow time.Duration
	// MinBackoff and MaxBackoff bound the delay before a restart, which
	// doubles with each failure in a row (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
}

// Validate reports every bad setting at once.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"start window", c.StartWindow}, {"min backoff", c.MinBackoff}, {"max backoff", c.MaxBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("max backoff %s is below min backoff %s", c.MaxBackoff, c.MinBackoff))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("supervisor config: %w", err)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StartWindow == 0 {
		c.StartWindow = DefaultStartWindow
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
}

// Permanent marks err as a failure no restart can mend: the supervisor
// stops every component and returns it.
func Permanent(err error) error { return backoff.Permanent(err) }

// Run runs every component until ctx ends, restarting those that fail, and
// returns nil once all have returned. When a component cannot start (see
// the package documentation) it stops the others and returns an error
// naming it.
func Run(ctx context.Context, cfg Config, components ...Component) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := check(components); err != nil {
		return err
	}
	cfg.defaults()
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range components {
		g.Go(func() error { return keep(gctx, cfg, c) })
	}
	return g.Wait()
}

// check reports components without a name or a Run, and names used twice
// (the log could not tell them apart).
func check(components []Component) error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range components {
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("component %d has no name", i))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("component %s is there twice", c.Name))
		}
		seen[c.Name] = true
		if c.Run == nil {
			errs = append(errs, fmt.Errorf("component %q has no Run", c.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	return nil
}

// keep runs c until ctx ends, restarting it after each failure; it returns
// an error only when c cannot start.
func keep(ctx context.Context, cfg Config, c Component) error {
	log := cfg.Logger.With("component", c.Name)
	bo := &backoff.ExponentialBackOff{InitialInterval: cfg.MinBackoff, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: cfg.MaxBackoff}
	bo.Reset()
	first := time.Now()
	started := false
	for failures := 1; ; failures++ {
		began := time.Now()
		err := runOnce(ctx, c)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("returned before it was stopped")
		}
		if time.Since(began) >= cfg.StartWindow {
			started, failures = true, 1
			bo.Reset()
		}
		var permanent *backoff.PermanentError
		switch {
		case errors.As(err, &permanent):
			log.Error("component failed and cannot be restarted; stopping", "err", err)
			if started {
				return fmt.Errorf("%s failed: %w", c.Name, permanent.Err)
			}
			return fmt.Errorf("%s cannot start: %w", c.Name, permanent.Err)
		case !started && time.Since(first) >= cfg.StartWindow:
			log.Error("component cannot start; stopping", "err", err, "failures", failures, "start_window", cfg.StartWindow.String())
			return fmt.Errorf("%s cannot start: failed %d times in %s: %w", c.Name, failures, cfg.StartWindow, err)
		}
		wait := bo.NextBackOff()
		if !started {
			// Try once more as the window closes, so that a component that
			// cannot start stops the process then, not a long backoff later.
			wait = min(wait, max(cfg.StartWindow-time.Since(first), 0))
		}
		log.Error("component failed; restarting", "err", err, "failures", failures, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// runOnce runs c once; a panic is a failure like any other, with its stack.
func runOnce(ctx context.Context, c Component) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return c.Run(ctx)
}

// sleep waits d; it reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
