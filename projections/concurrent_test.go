package projections_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
)

// counted wraps a projection and counts the events it applies.
type counted struct {
	projections.Projection
	n *atomic.Int64
}

func (c counted) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	c.n.Add(1)
	return c.Projection.Apply(b, e, data)
}

func countedAll(n *atomic.Int64) []projections.Projection {
	var out []projections.Projection
	for _, p := range projections.All() {
		out = append(out, counted{Projection: p, n: n})
	}
	return out
}

// TestTwoProjectorsAtOnce runs two projector processes (own pools, own NATS
// connections, one durable consumer) against one database while stacks
// append concurrently, and a single projector against another database fed
// the same events: the read models must be identical.
func TestTwoProjectorsAtOnce(t *testing.T) {
	t.Parallel()
	setup, lanes, s := workload(t, "tp", 6, 36)

	a := newEnv(t)
	a.startRelay(t)
	var applied [2]atomic.Int64
	for i := range 2 {
		pool := openPool(t, a.url)
		p, err := projections.NewProjector(projections.Config{
			Pool: pool, Store: newStore(t, pool), NATS: a.connect(t, "projector"),
			Projections: countedAll(&applied[i]), PageSize: 50, BatchSize: 16,
		})
		if err != nil {
			t.Fatal(err)
		}
		background(t, p)
	}
	b := newEnv(t)
	b.startRelay(t)
	background(t, b.projector(t, projections.Config{}))

	appendSteps(t, a.store, setup)
	appendSteps(t, b.store, setup)
	var heads [2]eventstore.Cursor
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { heads[0], errs[0] = playLanesErr(a.store, lanes) })
	wg.Go(func() { heads[1], errs[1] = playLanesErr(b.store, lanes) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	waitHead(t, a, heads[0])
	waitHead(t, b, heads[1])

	got, want := checksums(t, a.pool), checksums(t, b.pool)
	sameChecksums(t, "two projectors vs one", got, want)
	var runs int
	if err := a.pool.QueryRow(t.Context(), "SELECT count(*) FROM rm_runs").Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 6*36 {
		t.Errorf("%d runs, want %d", runs, 6*36)
	}
	// Each event is applied once by one of the two, for each projection.
	n := len(projections.All())
	if total := applied[0].Load() + applied[1].Load(); total != int64(n*s.events) {
		t.Errorf("the projectors applied %d events between them, want %d (%d projections × %d events)", total, n*s.events, n, s.events)
	}
	t.Logf("%d events; projector 1 applied %d, projector 2 %d", s.events, applied[0].Load(), applied[1].Load())
}
