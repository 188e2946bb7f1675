package statebackend

import (
	"context"
	"fmt"
	"sync"

	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/eventstore"
)

// maxCachedStacks bounds the cache; beyond it an arbitrary entry is dropped
// (it is rebuilt from its stream on the next request).
const maxCachedStacks = 10000

// stateCache keeps each stack's state aggregate with the stream version it
// reflects. Every load still reads the stream's tail from the database, so a
// cached state is never stale; the cache only saves re-reading and re-folding
// the stream's whole history on every request.
type stateCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	mu      sync.Mutex
	st      state.State
	version int64
}

func newStateCache() *stateCache { return &stateCache{entries: map[string]*cacheEntry{}} }

func (c *stateCache) entry(stackID string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[stackID]
	if !ok {
		if len(c.entries) >= maxCachedStacks {
			for k := range c.entries {
				delete(c.entries, k)
				break
			}
		}
		e = &cacheEntry{}
		c.entries[stackID] = e
	}
	return e
}

// load brings the stack's entry up to date with the events after its version
// and returns a copy of the state (copies are independent of later Applies).
func (c *stateCache) load(ctx context.Context, stackID string, after func(int64) ([]eventstore.Event, error), reg *eventstore.Registry) (state.State, int64, error) {
	e := c.entry(stackID)
	e.mu.Lock()
	defer e.mu.Unlock()
	events, err := after(e.version)
	if err != nil {
		return state.State{}, 0, fmt.Errorf("load the state of stack %s: %w", stackID, err)
	}
	st := e.st
	for _, ev := range events {
		v, err := reg.Decode(ev)
		if err != nil {
			return state.State{}, 0, fmt.Errorf("load the state of stack %s: %w", stackID, err)
		}
		se, ok := v.(state.Event)
		if !ok {
			return state.State{}, 0, fmt.Errorf("load the state of stack %s: event %s (%s) at version %d is not a state event", stackID, ev.ID, ev.Type, ev.Version)
		}
		st.Apply(se)
	}
	if n := len(events); n > 0 {
		e.st, e.version = st, events[n-1].Version
	}
	return st, e.version, nil
}
