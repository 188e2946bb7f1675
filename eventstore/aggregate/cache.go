package aggregate

import "sync"

// cache keeps the state of recently loaded streams at the version it was
// loaded at, so that the next load reads only the events appended since.
// Sharing a state value is safe: the domain's Apply never writes into memory
// a copy of the state shares (it replaces maps and clips slices before it
// appends), and events are never changed or deleted, so a cached state plus
// the events after its version is the current state, whoever appended them.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cached
}

type cached struct {
	streamType string
	version    int64
	state      any
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[string]cached, min(max, 1024))}
}

func (c *cache) get(streamID string) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[streamID]
	return e, ok
}

// put records a loaded state unless a newer one is already cached. When the
// cache is full an arbitrary entry makes room: a miss only costs a full load.
func (c *cache) put(streamID string, e cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.entries[streamID]
	if ok && old.streamType == e.streamType && old.version >= e.version {
		return
	}
	if !ok && len(c.entries) >= c.max {
		for id := range c.entries {
			delete(c.entries, id)
			break
		}
	}
	c.entries[streamID] = e
}
