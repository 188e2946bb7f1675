package commands

import (
	"context"
	"fmt"

	"github.com/gantryhq/gantry/eventstore"
)

// aggregate is one loaded aggregate: its state as of the version it was
// loaded at, and the events decided on it since (already applied to state).
type aggregate[S, C, E any] struct {
	stream  eventstore.Stream
	version int64 // the stream version loaded; eventstore.NoStream for a new one
	state   S
	pending []E
	decide  func(S, C) ([]E, error)
	apply   func(*S, E)
}

// do decides cmd on the current state, applies the events to it and keeps
// them for the append. On error nothing changes.
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

// batch returns the append of the pending events; ok is false when there
// are none.
func (a *aggregate[S, C, E]) batch() (b eventstore.Batch, ok bool) {
	if len(a.pending) == 0 {
		return eventstore.Batch{}, false
	}
	events := make([]any, len(a.pending))
	for i, e := range a.pending {
		events[i] = e
	}
	return eventstore.Batch{Stream: a.stream, Expected: a.version, Events: events}, true
}

// load reads stream and folds its events into a new aggregate, starting
// from the cached state of the stream when there is one. A stream holding
// an event of another aggregate's type is an error: ids are typed, so it
// means corrupt data, not bad input.
func load[S, C, E any](ctx context.Context, s *Service, stream eventstore.Stream, decide func(S, C) ([]E, error), apply func(*S, E)) (*aggregate[S, C, E], error) {
	a := &aggregate[S, C, E]{stream: stream, version: eventstore.NoStream, decide: decide, apply: apply}
	if c, ok := s.cache.get(stream.ID); ok && c.streamType == stream.Type {
		if st, ok := c.state.(S); ok {
			a.state, a.version = st, c.version
		}
	}
	stored, err := s.cfg.Store.LoadAfter(ctx, stream.ID, a.version)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", stream, err)
	}
	for _, e := range stored {
		if e.StreamType != stream.Type {
			return nil, fmt.Errorf("load %s: event %s at version %d belongs to a %s stream", stream, e.ID, e.Version, e.StreamType)
		}
		v, err := s.registry.Decode(e)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", stream, err)
		}
		ev, ok := v.(E)
		if !ok {
			return nil, fmt.Errorf("load %s: event %s (%s) at version %d is not a %s event", stream, e.ID, e.Type, e.Version, stream.Type)
		}
		apply(&a.state, ev)
		a.version = e.Version
	}
	if a.version > eventstore.NoStream {
		s.cache.put(stream.ID, cachedState{streamType: stream.Type, version: a.version, state: a.state})
	}
	return a, nil
}

// batcher is an aggregate seen as a source of one append batch.
type batcher interface {
	batch() (eventstore.Batch, bool)
}

// unit collects the aggregates one attempt of a command touches, so that
// all their events go out in one AppendAll: all or nothing.
type unit struct {
	s     *Service
	order []batcher
	byID  map[string]any // stream id → *aggregate[…]
	// extra are appends prepared outside the aggregates this package
	// loads (a state import), appended after theirs.
	extra []eventstore.Batch
}

func (s *Service) newUnit() *unit { return &unit{s: s, byID: map[string]any{}} }

// get returns the aggregate of stream, loading it on first use. Every
// aggregate of a stream is loaded once per attempt, so that two decisions
// on the same stream see each other's events.
func get[S, C, E any](ctx context.Context, u *unit, stream eventstore.Stream, decide func(S, C) ([]E, error), apply func(*S, E)) (*aggregate[S, C, E], error) {
	if a, ok := u.byID[stream.ID]; ok {
		typed, ok := a.(*aggregate[S, C, E])
		if !ok {
			return nil, fmt.Errorf("stream %s loaded as two different aggregates", stream)
		}
		return typed, nil
	}
	a, err := load(ctx, u.s, stream, decide, apply)
	if err != nil {
		return nil, err
	}
	u.byID[stream.ID] = a
	u.order = append(u.order, a)
	return a, nil
}

// batches returns the appends of every aggregate with pending events, in
// the order the aggregates were first used.
func (u *unit) batches() []eventstore.Batch {
	var out []eventstore.Batch
	for _, a := range u.order {
		if b, ok := a.batch(); ok {
			out = append(out, b)
		}
	}
	return append(out, u.extra...)
}
