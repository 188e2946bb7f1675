package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
)

// playLanes appends the steps of each lane from its own goroutine and
// returns the highest cursor appended.
func playLanes(t testing.TB, store *eventstore.Store, lanes [][][]eventstore.Batch) eventstore.Cursor {
	t.Helper()
	head, err := playLanesErr(store, lanes)
	if err != nil {
		t.Fatal(err)
	}
	return head
}

func playLanesErr(store *eventstore.Store, lanes [][][]eventstore.Batch) (eventstore.Cursor, error) {
	var mu sync.Mutex
	var head eventstore.Cursor
	var wg sync.WaitGroup
	errs := make([]error, len(lanes))
	for i, steps := range lanes {
		wg.Go(func() {
			c, err := appendStepsErr(context.Background(), store, steps)
			errs[i] = err
			mu.Lock()
			if head.Before(c) {
				head = c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return head, errors.Join(errs...)
}

// workload records the pools and n stacks with a worker each, then k
// scenarios per stack. Stacks touch disjoint streams (they share only the
// pools, created in setup), so each stack's steps can be appended from its
// own goroutine in any interleaving with the others.
func workload(t testing.TB, name string, stacks, scenarios int) (setup [][]eventstore.Batch, perLane [][][]eventstore.Batch, s *sim) {
	t.Helper()
	s = newSim(name)
	var lanes []*lane
	pools := []string{"wp_" + name + "1", "wp_" + name + "2"}
	setup = record(t, s, func() {
		for i, id := range pools {
			s.createPool(id, fmt.Sprintf("%s-%d", name, i))
		}
		for i := range stacks {
			lanes = append(lanes, s.newLane(fmt.Sprintf("%s-stack-%d", name, i), pools[i%2]))
		}
	})
	for i, l := range lanes {
		perLane = append(perLane, record(t, s, func() {
			for k := range scenarios {
				l.scenario(k + i)
			}
		}))
	}
	return setup, perLane, s
}

// waitHead waits until every projection has reached c.
func waitHead(t testing.TB, e *env, c eventstore.Cursor) {
	t.Helper()
	w := projections.NewWaiter(e.pool, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WaitFor(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestRebuildMatchesLiveProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.startRelay(t)
	background(t, e.projector(t, projections.Config{PageSize: 100}))

	setup, lanes, s := workload(t, "rb", 4, 27)
	appendSteps(t, e.store, setup)
	head := playLanes(t, e.store, lanes)
	waitHead(t, e, head)
	live := checksums(t, e.pool)
	var runs int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM rm_runs").Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 4*27 {
		t.Errorf("%d runs projected, want %d", runs, 4*27)
	}
	t.Logf("%d events", s.events)

	// The live projector keeps running through the rebuilds.
	var logs logBuffer
	if err := projections.Rebuild(ctx, e.pool, e.store, logs.logger()); err != nil {
		t.Fatal(err)
	}
	sameChecksums(t, "after rebuilding everything", checksums(t, e.pool), live)
	if err := projections.Rebuild(ctx, e.pool, e.store, nil, projections.RunsName); err != nil {
		t.Fatal(err)
	}
	sameChecksums(t, "after rebuilding runs", checksums(t, e.pool), live)
	if !strings.Contains(logs.String(), "rebuilt projections") {
		t.Errorf("rebuild logged nothing:\n%s", logs.String())
	}

	err := projections.Rebuild(ctx, e.pool, e.store, nil, "runs", "nope")
	if !errors.Is(err, projections.ErrUnknownProjection) || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "stacks, runs, pools, workers") {
		t.Errorf("unknown name: err = %v", err)
	}
	sameChecksums(t, "after a refused rebuild", checksums(t, e.pool), live)

	// A rebuild while events keep coming and the live projector runs: the
	// result equals a rebuild on a quiet store.
	setup2, lanes2, _ := workload(t, "rc", 4, 18)
	appendSteps(t, e.store, setup2)
	var head2 eventstore.Cursor
	var appendErr error
	var wg sync.WaitGroup
	wg.Go(func() { head2, appendErr = playLanesErr(e.store, lanes2) })
	if err := projections.Rebuild(ctx, e.pool, e.store, nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if appendErr != nil {
		t.Fatal(appendErr)
	}
	waitHead(t, e, head2)
	busy := checksums(t, e.pool)
	if err := projections.Rebuild(ctx, e.pool, e.store, nil); err != nil {
		t.Fatal(err)
	}
	sameChecksums(t, "rebuilt during appends vs rebuilt quietly", busy, checksums(t, e.pool))
	if busy["rm_runs"] == live["rm_runs"] {
		t.Error("the second workload changed no run")
	}
}
