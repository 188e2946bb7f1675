package commands

import "sync"

// stateCache keeps the state of recently loaded streams at the version it
// was loaded at, so that the next load reads only the events appended
// since (a stack's stream grows with every run it ever queued). Sharing a
// state value is safe: the domain's Apply never writes into memory a copy
// of the state shares, and events are never changed or deleted, so a
// cached state plus the events after its version is the current state,
// whoever appended them.
type stateCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cachedState
}

type cachedState struct {
	streamType string
	version    int64
	state      any
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, entries: make(map[string]cachedState, max)}
}

func (c *stateCache) get(streamID string) (cachedState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[streamID]
	return e, ok
}

// put records a loaded state unless a newer one is already cached. When the
// cache is full an arbitrary entry makes room: a miss only costs a full load.
func (c *stateCache) put(streamID string, e cachedState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[streamID]; ok && old.version >= e.version {
		return
	}
	if _, ok := c.entries[streamID]; !ok && len(c.entries) >= c.max {
		for id := range c.entries {
			delete(c.entries, id)
			break
		}
	}
	c.entries[streamID] = e
}
