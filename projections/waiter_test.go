package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
)

func TestWaitFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w := projections.NewWaiter(e.pool, nil)
	background(t, w)

	s := newSim("wf")
	head := appendSteps(t, e.store, record(t, s, func() {
		s.createPool("wp_one", "one")
		s.newLane("alpha", "wp_one")
	}))
	if err := w.WaitFor(ctx, eventstore.Cursor{}); err != nil {
		t.Errorf("zero cursor: %v", err)
	}
	if err := w.WaitFor(ctx, head, "nope"); !errors.Is(err, projections.ErrUnknownProjection) || !strings.Contains(err.Error(), "stacks, runs, pools, workers") {
		t.Errorf("unknown projection: err = %v", err)
	}

	// Nothing projects: the wait ends with its context, saying who lags.
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	err := w.WaitFor(short, head)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stacks at 0/0") {
		t.Errorf("timed out wait: err = %v", err)
	}

	// A catch-up releases waiters, for every projection or the named ones.
	done := make(chan error, 2)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	go func() { done <- w.WaitFor(wctx, head) }()
	go func() { done <- w.WaitFor(wctx, head, projections.StacksName, projections.WorkersName) }()
	select {
	case err := <-done:
		t.Fatalf("WaitFor returned before any catch-up: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	catchUp(t, e)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadYourWrites waits after every append, as the command layer does,
// and reads the change back at once.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.startRelay(t)
	background(t, e.projector(t, projections.Config{}))
	w := projections.NewWaiter(e.pool, nil)
	background(t, w)
	waitForConsumer(t, e.connect(t, "test"), projections.DefaultDurable)

	s := newSim("ry")
	var l *lane
	appendSteps(t, e.store, record(t, s, func() {
		s.createPool("wp_one", "one")
		l = s.newLane("alpha", "wp_one")
	}))
	var total, worst time.Duration
	const n = 20
	for i := range n {
		var id string
		c := appendSteps(t, e.store, record(t, s, func() { id = l.trigger(run.Proposed, i%2 == 0) }))
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.WaitFor(wctx, c)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		total, worst = total+took, max(worst, took)
		r, err := e.q.GetRun(ctx, id)
		if err != nil || r.Status != run.Ready {
			t.Fatalf("run %s right after WaitFor: %+v, %v", id, r, err)
		}
	}
	t.Logf("WaitFor took %s on average, %s at most", total/n, worst)
}
