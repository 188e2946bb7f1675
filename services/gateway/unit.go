package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
)

// aggregate is one loaded aggregate: its state as of the version it was
// loaded at, and the events decided on it since (already applied).
type aggregate[S, C, E any] struct {
	stream  eventstore.Stream
	version int64
	state   S
	pending []E
	decide  func(S, C) ([]E, error)
	apply   func(*S, E)
}

// do decides cmd on the current state, applies the events and keeps them for
// the append. On error nothing changes.
func (a *aggregate[S, C, E]) do(cmd C) ([]E, error) {
	events, err := a.decide(a.state, cmd)
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		a.apply(&a.state, e)
	}
	a.pending = append(a.pending, events...)
	return events, nil
}

func (a *aggregate[S, C, E]) batch() (eventstore.Batch, bool) {
	if len(a.pending) == 0 {
		return eventstore.Batch{}, false
	}
	events := make([]any, len(a.pending))
	for i, e := range a.pending {
		events[i] = e
	}
	return eventstore.Batch{Stream: a.stream, Expected: a.version, Events: events}, true
}

type (
	runAggregate    = aggregate[run.State, run.Command, run.Event]
	workerAggregate = aggregate[worker.State, worker.Command, worker.Event]
	stackAggregate  = aggregate[stack.State, stack.Command, stack.Event]
)

// unit is one unit of work: the aggregates a report loads and changes,
// appended together with the versions they were loaded at.
type unit struct {
	store *eventstore.Store
	order []string // stream ids in load order, for a stable append
	byID  map[string]interface {
		batch() (eventstore.Batch, bool)
	}
}

func newUnit(store *eventstore.Store) *unit {
	return &unit{store: store, byID: map[string]interface {
		batch() (eventstore.Batch, bool)
	}{}}
}

func loadInto[S, C, E any](ctx context.Context, u *unit, stream eventstore.Stream, decide func(S, C) ([]E, error), apply func(*S, E)) (*aggregate[S, C, E], error) {
	if got, ok := u.byID[stream.ID]; ok {
		a, ok := got.(*aggregate[S, C, E])
		if !ok || a.stream.Type != stream.Type {
			return nil, fmt.Errorf("load %s: already loaded as another type", stream)
		}
		return a, nil
	}
	a := &aggregate[S, C, E]{stream: stream, version: eventstore.NoStream, decide: decide, apply: apply}
	stored, err := u.store.LoadAfter(ctx, stream.ID, eventstore.NoStream)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", stream, err)
	}
	for _, e := range stored {
		if e.StreamType != stream.Type {
			return nil, fmt.Errorf("load %s: event %s at version %d belongs to a %s stream", stream, e.ID, e.Version, e.StreamType)
		}
		v, err := u.store.Registry().Decode(e)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", stream, err)
		}
		ev, ok := v.(E)
		if !ok {
			return nil, fmt.Errorf("load %s: event %s (%s) is not a %s event", stream, e.ID, e.Type, stream.Type)
		}
		apply(&a.state, ev)
		a.version = e.Version
	}
	u.byID[stream.ID] = a
	u.order = append(u.order, stream.ID)
	return a, nil
}

func (u *unit) run(ctx context.Context, id string) (*runAggregate, error) {
	return loadInto(ctx, u, eventstore.Stream{Type: eventstore.StreamRun, ID: id}, run.Decide, (*run.State).Apply)
}

func (u *unit) worker(ctx context.Context, id string) (*workerAggregate, error) {
	return loadInto(ctx, u, eventstore.Stream{Type: eventstore.StreamWorker, ID: id}, worker.Decide, (*worker.State).Apply)
}

func (u *unit) stack(ctx context.Context, id string) (*stackAggregate, error) {
	return loadInto(ctx, u, eventstore.Stream{Type: eventstore.StreamStack, ID: id}, stack.Decide, (*stack.State).Apply)
}

// commit appends every pending event in one AppendAll. It returns false
// when nothing was decided.
func (u *unit) commit(ctx context.Context) (bool, error) {
	var batches []eventstore.Batch
	for _, id := range u.order {
		if b, ok := u.byID[id].batch(); ok {
			batches = append(batches, b)
		}
	}
	if len(batches) == 0 {
		return false, nil
	}
	_, err := u.store.AppendAll(ctx, batches...)
	return err == nil, err
}

// maxAttempts bounds the retries of a unit of work that lost a race.
const maxAttempts = 5

// execute runs decide on a fresh unit and appends what it decided, again
// from a fresh load when another writer changed one of the streams first.
func execute(ctx context.Context, store *eventstore.Store, decide func(ctx context.Context, u *unit) error) error {
	for attempt := 1; ; attempt++ {
		u := newUnit(store)
		if err := decide(ctx, u); err != nil {
			return err
		}
		_, err := u.commit(ctx)
		var conflict *eventstore.ConflictError
		if errors.As(err, &conflict) && attempt < maxAttempts {
			continue
		}
		return err
	}
}

// endRun frees the worker of a run that a report or a lost worker ended
// (or left UNCONFIRMED): worker.RunFinished, and for a terminal run the
// stack lock's release and hand-on.
//
// The release and hand-on duplicate services/commands' releaseStack and
// handOn (lockqueue.go), which are unexported and bound to that package's
// unit of work.
func endRun(ctx context.Context, u *unit, r *runAggregate, w *workerAggregate, actor string, at time.Time) error {
	if r.state.IsTerminal() || r.state.Status() == run.Unconfirmed {
		if _, err := w.do(worker.RunFinished{RunID: r.state.ID(), Actor: actor, At: at}); err != nil {
			return fmt.Errorf("free worker %s: %w", w.state.ID(), err)
		}
	}
	if r.state.IsTerminal() {
		return releaseStack(ctx, u, r, actor, at)
	}
	return nil
}

// releaseStack lets go of what an ended run held on its stack: the run lock
// (handed on to the next run) or its place in the queue. Proposed runs hold
// nothing.
func releaseStack(ctx context.Context, u *unit, r *runAggregate, actor string, at time.Time) error {
	if r.state.Type() == run.Proposed {
		return nil
	}
	stk, err := u.stack(ctx, r.state.StackID())
	if err != nil {
		return err
	}
	if !stk.state.Exists() {
		return nil
	}
	if _, err := stk.do(stack.ReleaseLock{RunID: r.state.ID(), Actor: actor, At: at}); err != nil {
		return fmt.Errorf("release stack %s from run %s: %w", stk.state.ID(), r.state.ID(), err)
	}
	return handOn(ctx, u, stk, actor, at)
}

// handOn gives a free run lock to the run at the head of the stack's queue
// and makes that run READY; see services/commands.handOn.
func handOn(ctx context.Context, u *unit, stk *stackAggregate, actor string, at time.Time) error {
	for stk.state.LockHolder() == "" {
		queue := stk.state.Queue()
		if len(queue) == 0 {
			return nil
		}
		head, err := u.run(ctx, queue[0])
		if err != nil {
			return err
		}
		if !head.state.Exists() || head.state.IsTerminal() {
			if _, err := stk.do(stack.ReleaseLock{RunID: queue[0], Actor: actor, At: at}); err != nil {
				return fmt.Errorf("drop ended run %s from the queue of stack %s: %w", queue[0], stk.state.ID(), err)
			}
			continue
		}
		_, err = stk.do(stack.AcquireLock{RunID: queue[0], Actor: actor, At: at})
		if errors.Is(err, stack.ErrLockedByOther) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("hand the lock of stack %s to run %s: %w", stk.state.ID(), queue[0], err)
		}
		if head.state.Status() == run.Queued {
			if _, err := head.do(run.MarkReady{Actor: actor, At: at}); err != nil {
				return fmt.Errorf("make run %s ready: %w", queue[0], err)
			}
		}
	}
	return nil
}
