package scheduler_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/scheduler"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// A scheduler whose subscriptions are lost fails, and its supervisor runs
// it again: relayed events wake it once more. The sweep is off, so only a
// wake-up can assign.
func TestSupervisedSchedulerSubscribesAgain(t *testing.T) {
	e := newEnv(t)
	const pool = "wp_resubscribe"
	stk := e.createStack(pool)
	aggs := testenv.Aggregates(t, e.store)
	cmds, err := commands.NewSystem(commands.SystemConfig{Aggregates: aggs})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(scheduler.Config{Pool: e.pool, Aggregates: aggs, Commands: cmds, NATS: e.connect("scheduler"), SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	supervise(t, &log, supervisor.Component{Name: "scheduler", Run: s.Run})
	in := e.listen(pool, nil, false)
	await.Until(t, 10*time.Second, "the scheduler to subscribe and look for work", func() bool { return s.Passes() > 0 })
	e.registerWorker(pool)
	e.readyRun(stk, run.Task, false, e.at())
	in.waitFor(1, 10*time.Second)

	// Nothing wakes the scheduler meanwhile: the next pass is the restarted
	// one's first, which it starts once subscribed.
	passes := s.Passes()
	if n := s.DropSubscriptions(); n == 0 {
		t.Fatal("the scheduler had no subscriptions to drop")
	}
	await.Until(t, 10*time.Second, "the lost subscription logged with the component", func() bool {
		return log.has(`"component":"scheduler"`, `"level":"ERROR"`, "subscription to")
	})
	await.Until(t, 10*time.Second, "the restarted scheduler's first pass", func() bool { return s.Passes() > passes })
	w := e.registerWorker(pool)
	r := e.readyRun(stk, run.Task, false, e.at())
	got := in.waitFor(2, 10*time.Second)
	if got[1].RunID != r || got[1].WorkerID != w {
		t.Fatalf("assignment %+v, want run %s on %s", got[1], r, w)
	}
}

// supervise runs components under a supervisor logging to log until the
// test ends, when it must have returned nil.
func supervise(t *testing.T, log *syncBuffer, components ...supervisor.Component) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- supervisor.Run(ctx, supervisor.Config{Logger: slog.New(slog.NewJSONHandler(log, nil)), MinBackoff: 10 * time.Millisecond},
			components...)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor: %v", err)
		}
	})
}

// syncBuffer is a log safe to write from the supervisor while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// has reports whether one line of the log holds every part.
func (b *syncBuffer) has(parts ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range strings.SplitSeq(b.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
