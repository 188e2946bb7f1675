package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
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
}

// stepResult is where one transaction left a projection.
type stepResult struct {
	at      eventstore.Cursor // the checkpoint afterwards
	applied int               // events the step moved past
	done    bool              // the bound is reached, or the store has no more events for now
}

// step applies to p, in one transaction, the events after its checkpoint
// up to bound, at most one page of them: lock the checkpoint row, apply
// every event after it, save the checkpoint, notify waiters, commit. On
// any error nothing is committed and the checkpoint stays where it was.
func (g *engine) step(ctx context.Context, p Projection, bound eventstore.Cursor, pages *pageReader) (stepResult, error) {
	name := p.Name()
	tx, err := g.pool.Begin(ctx)
	if err != nil {
		return stepResult{}, fmt.Errorf("projection %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	cp, err := lockCheckpoint(ctx, tx, name)
	if err != nil {
		return stepResult{}, err
	}
	if !cp.Before(bound) {
		return stepResult{at: cp, done: true}, nil
	}
	pg, err := pages.after(ctx, cp)
	if err != nil {
		return stepResult{}, fmt.Errorf("projection %s: read events after %d/%d: %w", name, cp.Tx, cp.Position, err)
	}
	items := pg.items
	n := 0
	for n < len(items) && !bound.Before(items[n].event.Cursor()) {
		n++
	}
	// Done when the bound is reached (an event after it follows), or, when
	// catching up to no particular event, when the store has no more now.
	done := n < len(items) || (!pg.full && bound == unbounded)
	if n == 0 {
		return stepResult{at: cp, done: done}, nil
	}
	items = items[:n]

	b := &pgx.Batch{}
	owner := make([]int, 0, n) // owner[i]: the item whose Apply queued statement i
	for i, it := range items {
		e := it.event
		switch {
		case !cp.Before(e.Cursor()):
			continue // at or below the checkpoint: applied already
		case it.unknown:
			continue // reported when the page was read
		case it.err != nil:
			return stepResult{}, fmt.Errorf("projection %s: event at position %d (%s, tx %d): %w", name, e.Position, e.Type, e.Tx, it.err)
		}
		if err := p.Apply(b, e, it.data); err != nil {
			return stepResult{}, fmt.Errorf("projection %s: apply event at position %d (%s on %s, tx %d): %w", name, e.Position, e.Type, e.Stream(), e.Tx, err)
		}
		for len(owner) < b.Len() {
			owner = append(owner, i)
		}
	}
	last := items[n-1].event
	b.Queue(saveCheckpointSQL, CheckpointName(name), last.Tx, last.Position, last.ID)
	b.Queue(notifySQL, notifyChannel, name)
	br := tx.SendBatch(ctx, b)
	for i := range b.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			if i < len(owner) {
				e := items[owner[i]].event
				return stepResult{}, fmt.Errorf("projection %s: apply event at position %d (%s on %s, tx %d): %w", name, e.Position, e.Type, e.Stream(), e.Tx, err)
			}
			return stepResult{}, fmt.Errorf("projection %s: save checkpoint at position %d: %w", name, last.Position, err)
		}
	}
	if err := br.Close(); err != nil {
		return stepResult{}, fmt.Errorf("projection %s: apply events up to position %d: %w", name, last.Position, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return stepResult{}, fmt.Errorf("projection %s: commit up to position %d: %w", name, last.Position, err)
	}
	return stepResult{at: last.Cursor(), applied: n, done: done}, nil
}

// catchUp moves every projection of ps to bound, a page per transaction;
// for unbounded, as far as the store has events now. Projections advance in
// turns, page by page, so those at the same cursor share each page read. A
// projection that fails stops there and the others carry on; the failures
// come back by name.
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
		next := active[:0:0]
		at := make([]eventstore.Cursor, 0, len(active))
		progressed := false
		for _, p := range active {
			r, err := g.step(ctx, p, bound, pages)
			if err != nil {
				failed[p.Name()] = err
				continue
			}
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
	return pgx.BeginFunc(ctx, g.pool, func(tx pgx.Tx) error {
		if _, err := lockCheckpoint(ctx, tx, name); err != nil {
			return err
		}
		tables := make([]string, len(p.Tables()))
		for i, t := range p.Tables() {
			tables[i] = pgx.Identifier{t}.Sanitize()
		}
		b := &pgx.Batch{}
		b.Queue("TRUNCATE " + strings.Join(tables, ", "))
		b.Queue(resetCheckpointSQL, CheckpointName(name))
		b.Queue(notifySQL, notifyChannel, name)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("projection %s: empty tables and reset checkpoint: %w", name, err)
		}
		return nil
	})
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
