package api

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/gantryhq/gantry/eventstore"
)

// memEvents implements EventReader and ChangeNotifier over a slice kept in
// commit order, for testing the handler's loop without PostgreSQL.
type memEvents struct {
	mu      sync.Mutex
	events  []eventstore.Event
	changed chan struct{}
	filters []eventstore.Filter
	froms   []int64
	readErr error
}

func newMemEvents(events ...eventstore.Event) *memEvents {
	return &memEvents{events: events, changed: make(chan struct{})}
}

// append adds events (in commit order, after the existing ones) and wakes
// followers.
func (m *memEvents) append(events ...eventstore.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, events...)
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memEvents) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *memEvents) ReadAll(_ context.Context, after eventstore.Cursor, f eventstore.Filter, limit int) ([]eventstore.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.filters = append(m.filters, f)
	if m.readErr != nil {
		return nil, m.readErr
	}
	var out []eventstore.Event
	for _, e := range m.events {
		if len(out) == limit {
			break
		}
		if after.Before(e.Cursor()) && f.Match(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memEvents) CursorFrom(_ context.Context, p int64) (eventstore.Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.froms = append(m.froms, p)
	if p <= 0 {
		return eventstore.Cursor{}, nil
	}
	var first *eventstore.Event
	for i, e := range m.events {
		if e.Position >= p && (first == nil || e.Position < first.Position) {
			first = &m.events[i]
		}
	}
	if first != nil {
		return eventstore.Cursor{Tx: first.Tx, Position: first.Position - 1}, nil
	}
	if len(m.events) == 0 {
		return eventstore.Cursor{}, nil
	}
	return m.events[len(m.events)-1].Cursor(), nil
}

func (m *memEvents) seen() (filters []eventstore.Filter, froms []int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.filters), slices.Clone(m.froms)
}

// syncBuffer is a bytes.Buffer safe for a logger writing from server
// goroutines while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
