package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
)

// unbounded is a bound after every event: catch up to the store's head.
var unbounded = eventstore.Cursor{Tx: math.MaxInt64, Position: math.MaxInt64}

// engine moves projections forward: it is what the projector and Rebuild share.
type engine struct {
	pool  *pgxpool.Pool
	store *eventstore.Store
	log   *slog.Logger
	all   []Projection

	mu   sync.Mutex
	seen map[string]eventstore.Cursor // the checkpoints as this engine last saw them
}

// stepResult is where one transaction left a projection.
type stepResult struct {
	at      eventstore.Cursor // the checkpoint afterwards
	applied int               // events the step moved past
	done    bool              // the bound is reached, or the store has no more events for now
}

// step moves the projections ps towards bound in one transaction: lock
// their checkpoints, apply to each, from one page of events after its
// checkpoint, the events up to bound (and the rest of the bound's
// transaction, committed with it), save the checkpoints, notify waiters,
// commit. On any error nothing is committed and every checkpoint stays
// where it was; the error names the projection and the event.
func (g *engine) step(ctx context.Context, ps []Projection, bound eventstore.Cursor, pages *pageReader) ([]stepResult, error) {
	t, cps, err := beginCheckpoints(ctx, g.pool, namesOf(ps))
	if err != nil {
		return nil, err
	}
	defer t.end(ctx)
	results := make([]stepResult, len(ps))
	b := &pgx.Batch{}
	// owners[i] is the projection and event whose Apply queued statement i
	// of b; a checkpoint's save has event -1.
	type owner struct{ p, item int }
	var owners []owner
	var items [][]item
	moved := map[string]eventstore.Cursor{}
	for pi, p := range ps {
		name := p.Name()
		cp := cps[name]
		items = append(items, nil)
		if !cp.Before(bound) {
			results[pi] = stepResult{at: cp, done: true}
			continue
		}
		pg, err := pages.after(ctx, cp)
		if err != nil {
			return nil, fmt.Errorf("projection %s: read events after %d/%d: %w", name, cp.Tx, cp.Position, err)
		}
		its := pg.items
		n := 0
		for n < len(its) && (!bound.Before(its[n].event.Cursor()) || its[n].event.Tx == bound.Tx) {
			n++
		}
		// Done when the bound is reached (an event after it follows, or the
		// last applied is the bound), or, when catching up to no particular
		// event, when the store has no more now.
		done := n < len(its) || (!pg.full && bound == unbounded)
		if n == 0 {
			results[pi] = stepResult{at: cp, done: done}
			continue
		}
		its = its[:n]
		items[pi] = its
		for i, it := range its {
			e := it.event
			switch {
			case it.unknown:
				continue // reported when the page was read
			case it.err != nil:
				return nil, fmt.Errorf("projection %s: event at position %d (%s, tx %d): %w", name, e.Position, e.Type, e.Tx, it.err)
			}
			if err := p.Apply(b, e, it.data); err != nil {
				return nil, fmt.Errorf("projection %s: apply event at position %d (%s on %s, tx %d): %w", name, e.Position, e.Type, e.Stream(), e.Tx, err)
			}
			for len(owners) < b.Len() {
				owners = append(owners, owner{pi, i})
			}
		}
		last := its[n-1].event
		b.Queue(saveCheckpointSQL, CheckpointName(name), last.Tx, last.Position, last.ID)
		owners = append(owners, owner{pi, -1})
		results[pi] = stepResult{at: last.Cursor(), applied: n, done: done || !last.Cursor().Before(bound)}
		moved[name] = last.Cursor()
	}
	if len(moved) == 0 {
		g.sawAll(ps, results)
		return results, nil
	}
	b.Queue(notifySQL, notifyChannel, checkpointNotice(moved))
	err = t.commit(ctx, b, func(i int, err error) error {
		if i >= len(owners) {
			return fmt.Errorf("projections %s: notify waiters: %w", strings.Join(t.names, ", "), err)
		}
		o := owners[i]
		name := ps[o.p].Name()
		if o.item < 0 {
			last := items[o.p][len(items[o.p])-1].event
			return fmt.Errorf("projection %s: save checkpoint at position %d: %w", name, last.Position, err)
		}
		e := items[o.p][o.item].event
		return fmt.Errorf("projection %s: apply event at position %d (%s on %s, tx %d): %w", name, e.Position, e.Type, e.Stream(), e.Tx, err)
	})
	if err != nil {
		return nil, err
	}
	g.sawAll(ps, results)
	return results, nil
}

// saw records that name's checkpoint is at c; reset moves it back.
func (g *engine) saw(name string, c eventstore.Cursor, reset bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]eventstore.Cursor{}
	}
	if reset || g.seen[name].Before(c) {
		g.seen[name] = c
	}
}

func (g *engine) sawAll(ps []Projection, results []stepResult) {
	for i, p := range ps {
		g.saw(p.Name(), results[i].at, false)
	}
}

// behind returns the projections of ps whose checkpoint this engine has not
// yet seen at or after c. Checkpoints only move forward (but for a rebuild,
// which replays every event anyway), so one seen at or after c needs no
// transaction to know it includes c.
func (g *engine) behind(ps []Projection, c eventstore.Cursor) []Projection {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Projection
	for _, p := range ps {
		if g.seen[p.Name()].Before(c) {
			out = append(out, p)
		}
	}
	return out
}

// catchUp moves every projection of ps to bound, a page per transaction;
// for unbounded, as far as the store has events now. The projections move
// together, one transaction for all of them per page, sharing each page
// read by those at the same cursor. When that transaction fails, each
// projection steps in a transaction of its own, so that one that fails
// stops there and the others carry on; the failures come back by name.
//
// The store returns only events of transactions older than every open one,
// so a bound may be out of sight for a moment: catchUp then waits (bounded
// by ctx) for the open transactions to end. A bound beyond the store's head
// (an event this store does not have) is lowered to the head.
func (g *engine) catchUp(ctx context.Context, ps []Projection, bound eventstore.Cursor, pageSize int) map[string]error {
	pages := newPageReader(g.store, g.log, pageSize)
	failed := map[string]error{}
	active := ps
	stall := time.Millisecond
	for len(active) > 0 && ctx.Err() == nil {
		results, err := g.step(ctx, active, bound, pages)
		if err != nil && len(active) > 1 {
			results = make([]stepResult, 0, len(active))
			var still []Projection
			for _, p := range active {
				r, err := g.step(ctx, []Projection{p}, bound, pages)
				if err != nil {
					failed[p.Name()] = err
					continue
				}
				still = append(still, p)
				results = append(results, r[0])
			}
			active = still
		} else if err != nil {
			failed[active[0].Name()] = err
			break
		}
		next := active[:0:0]
		at := make([]eventstore.Cursor, 0, len(active))
		progressed := false
		for i, p := range active {
			r := results[i]
			progressed = progressed || r.applied > 0
			if !r.done {
				next = append(next, p)
				at = append(at, r.at)
			}
		}
		pages.retain(at)
		active = next
		if len(active) == 0 || progressed {
			stall = time.Millisecond
			continue
		}
		head, err := g.store.Head(ctx)
		if err != nil {
			for _, p := range active {
				failed[p.Name()] = fmt.Errorf("projection %s: %w", p.Name(), err)
			}
			return failed
		}
		if head.Before(bound) {
			bound = head
			continue
		}
		sleep(ctx, stall)
		stall = min(2*stall, 50*time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		for _, p := range active {
			if failed[p.Name()] == nil {
				failed[p.Name()] = fmt.Errorf("projection %s: %w", p.Name(), err)
			}
		}
	}
	return failed
}

// catchUpToHead moves every projection of ps at least to the store's head
// as of now, waiting for older transactions that are still open.
func (g *engine) catchUpToHead(ctx context.Context, ps []Projection, pageSize int) map[string]error {
	head, err := g.store.Head(ctx)
	if err != nil {
		failed := map[string]error{}
		for _, p := range ps {
			failed[p.Name()] = fmt.Errorf("projection %s: %w", p.Name(), err)
		}
		return failed
	}
	if head == (eventstore.Cursor{}) {
		return nil
	}
	return g.catchUp(ctx, ps, head, pageSize)
}

// reset empties p's tables and moves its checkpoint back to the start, in
// one transaction holding the checkpoint's row lock, so that no projector
// applies events in between.
func (g *engine) reset(ctx context.Context, p Projection) error {
	name := p.Name()
	t, _, err := beginCheckpoints(ctx, g.pool, []string{name})
	if err != nil {
		return err
	}
	defer t.end(ctx)
	tables := make([]string, len(p.Tables()))
	for i, tb := range p.Tables() {
		tables[i] = pgx.Identifier{tb}.Sanitize()
	}
	b := &pgx.Batch{}
	b.Queue("TRUNCATE " + strings.Join(tables, ", "))
	b.Queue(resetCheckpointSQL, CheckpointName(name))
	b.Queue(notifySQL, notifyChannel, checkpointNotice(map[string]eventstore.Cursor{name: {}}))
	err = t.commit(ctx, b, func(_ int, err error) error {
		return fmt.Errorf("projection %s: empty tables and reset checkpoint: %w", name, err)
	})
	if err != nil {
		return err
	}
	g.saw(name, eventstore.Cursor{}, true)
	return nil
}

// joinFailures turns catchUp's failures into one error, in the order of ps.
func joinFailures(ps []Projection, failed map[string]error) error {
	var errs []error
	for _, p := range ps {
		if err := failed[p.Name()]; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
