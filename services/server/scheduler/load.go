package scheduler

import (
	"context"
	"fmt"
	"sync"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
)

// maxCachedStreams bounds the loader's cache; past it the cache starts over.
const maxCachedStreams = 8192

// loader reads aggregates from the event store. It keeps the last state
// and version of each stream it loaded, so a reload reads only the events
// appended since: always current, without replaying long streams (a
// stack's stream grows with every tracked run).
type loader struct {
	store *eventstore.Store
	mu    sync.Mutex
	cache map[string]cachedState
}

type cachedState struct {
	streamType string
	version    int64
	state      any
}

func newLoader(store *eventstore.Store) *loader {
	return &loader{store: store, cache: map[string]cachedState{}}
}

// load returns the current state of stream and its version
// (eventstore.NoStream if it has no events).
func load[S any, E any](ctx context.Context, l *loader, stream eventstore.Stream, apply func(*S, E)) (S, int64, error) {
	var state S
	version := eventstore.NoStream
	l.mu.Lock()
	if c, ok := l.cache[stream.ID]; ok && c.streamType == stream.Type {
		if st, ok := c.state.(S); ok {
			state, version = st, c.version
		}
	}
	l.mu.Unlock()
	stored, err := l.store.LoadAfter(ctx, stream.ID, version)
	if err != nil {
		return state, 0, fmt.Errorf("load %s: %w", stream, err)
	}
	if len(stored) == 0 {
		return state, version, nil
	}
	for _, e := range stored {
		if e.StreamType != stream.Type {
			return state, 0, fmt.Errorf("load %s: event %s at version %d belongs to a %s stream", stream, e.ID, e.Version, e.StreamType)
		}
		v, err := l.store.Registry().Decode(e)
		if err != nil {
			return state, 0, fmt.Errorf("load %s: %w", stream, err)
		}
		ev, ok := v.(E)
		if !ok {
			return state, 0, fmt.Errorf("load %s: event %s (%s) is not a %s event", stream, e.ID, e.Type, stream.Type)
		}
		apply(&state, ev)
		version = e.Version
	}
	l.mu.Lock()
	if len(l.cache) >= maxCachedStreams {
		clear(l.cache)
	}
	// A concurrent load may have cached a newer version; keep the newest.
	if c, ok := l.cache[stream.ID]; !ok || c.version < version {
		l.cache[stream.ID] = cachedState{streamType: stream.Type, version: version, state: state}
	}
	l.mu.Unlock()
	return state, version, nil
}

func runStream(id string) eventstore.Stream {
	return eventstore.Stream{Type: eventstore.StreamRun, ID: id}
}

func workerStream(id string) eventstore.Stream {
	return eventstore.Stream{Type: eventstore.StreamWorker, ID: id}
}

func (l *loader) run(ctx context.Context, id string) (run.State, int64, error) {
	return load(ctx, l, runStream(id), (*run.State).Apply)
}

func (l *loader) worker(ctx context.Context, id string) (worker.State, int64, error) {
	return load(ctx, l, workerStream(id), (*worker.State).Apply)
}

func (l *loader) stack(ctx context.Context, id string) (stack.State, error) {
	st, _, err := load(ctx, l, eventstore.Stream{Type: eventstore.StreamStack, ID: id}, (*stack.State).Apply)
	return st, err
}
