package aggregate

import (
	"context"
	"fmt"

	"github.com/gantryhq/gantry/eventstore"
)

// Root is one aggregate loaded in a unit of work: its state as of the
// version it was loaded at, with the events decided on it since applied.
type Root[S, C, E any] struct {
	kind    Kind[S, C, E]
	stream  eventstore.Stream
	version int64 // the stream version loaded; eventstore.NoStream for a new one
	state   S
	pending []E
}

// State returns the aggregate's state, including the events decided so far.
func (a *Root[S, C, E]) State() S { return a.state }

// Do decides cmd on the current state, applies the events to it and keeps
// them for the unit's append. On error nothing changes.
func (a *Root[S, C, E]) Do(cmd C) ([]E, error) {
	events, err := a.kind.Decide(a.state, cmd)
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		a.kind.Apply(&a.state, e)
	}
	a.pending = append(a.pending, events...)
	return events, nil
}

// batch returns the append of the pending events; ok is false when there
// are none.
func (a *Root[S, C, E]) batch() (b eventstore.Batch, ok bool) {
	if len(a.pending) == 0 {
		return eventstore.Batch{}, false
	}
	events := make([]any, len(a.pending))
	for i, e := range a.pending {
		events[i] = e
	}
	return eventstore.Batch{Stream: a.stream, Expected: a.version, Events: events}, true
}

// batcher is a Root seen as a source of one append batch.
type batcher interface {
	batch() (eventstore.Batch, bool)
}

// Unit is one attempt of a command: the aggregates it loaded and decided on,
// whose events go out together in one AppendAll, all or nothing.
type Unit struct {
	r     *Repository
	order []batcher
	byID  map[string]any // stream id → *Root[…]
	// extra are appends prepared outside the unit's aggregates (a state
	// import), appended after theirs.
	extra []eventstore.Batch
}

// Get returns the aggregate of kind k with key, loading it on its first use
// in u: every aggregate is loaded once per attempt, so that two decisions on
// one stream see each other's events.
func Get[S, C, E any](ctx context.Context, u *Unit, k Kind[S, C, E], key string) (*Root[S, C, E], error) {
	stream := k.Stream(key)
	if a, ok := u.byID[stream.ID]; ok {
		typed, ok := a.(*Root[S, C, E])
		if !ok || typed.stream.Type != stream.Type {
			return nil, fmt.Errorf("stream %s loaded as two different aggregates", stream)
		}
		return typed, nil
	}
	state, version, err := load(ctx, u.r, k, stream)
	if err != nil {
		return nil, err
	}
	a := &Root[S, C, E]{kind: k, stream: stream, version: version, state: state}
	u.byID[stream.ID] = a
	u.order = append(u.order, a)
	return a, nil
}

// Append adds a batch prepared outside the unit's aggregates, at the
// expected version it carries, to the unit's AppendAll.
func (u *Unit) Append(b eventstore.Batch) { u.extra = append(u.extra, b) }

// batches returns the appends of every aggregate with pending events, in
// the order the aggregates were first used, then the extra batches.
func (u *Unit) batches() []eventstore.Batch {
	var out []eventstore.Batch
	for _, a := range u.order {
		if b, ok := a.batch(); ok {
			out = append(out, b)
		}
	}
	return append(out, u.extra...)
}
