package projections

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gantryhq/gantry/eventstore"
)

// item is one event of a page and its decoded payload.
type item struct {
	event   eventstore.Event
	data    any
	unknown bool  // the registry does not know the type: skipped
	err     error // the payload does not decode: the projection stops here
}

// page is the events that directly follow a cursor in commit order. A page
// is a fact that stays true: the store returns only events of transactions
// that can no longer change, and nothing can later commit between them, so a
// page read for one projection serves every other one at the same cursor.
type page struct {
	items []item
	// full means the read returned the limit: more events may follow at once.
	full bool
}

// pageReader reads and decodes pages of events once for all projections
// that stand at the same cursor.
type pageReader struct {
	store *eventstore.Store
	reg   *eventstore.Registry
	log   *slog.Logger
	size  int
	pages map[eventstore.Cursor]*page
}

func newPageReader(store *eventstore.Store, log *slog.Logger, size int) *pageReader {
	return &pageReader{store: store, reg: store.Registry(), log: log, size: size, pages: map[eventstore.Cursor]*page{}}
}

// after returns the page of events strictly after c.
func (r *pageReader) after(ctx context.Context, c eventstore.Cursor) (*page, error) {
	if p, ok := r.pages[c]; ok {
		return p, nil
	}
	events, err := r.store.ReadAll(ctx, c, eventstore.Filter{}, r.size)
	if err != nil {
		return nil, err
	}
	p := &page{items: make([]item, len(events)), full: len(events) == r.size}
	for i, e := range events {
		p.items[i].event = e
		data, err := r.reg.Decode(e)
		switch {
		case errors.Is(err, eventstore.ErrUnknownEventType):
			p.items[i].unknown = true
			r.log.Warn("skipping an event of a type this build does not know",
				"position", e.Position, "tx", e.Tx, "event_type", e.Type, "stream", e.Stream().String(), "event_id", e.ID)
		case err != nil:
			p.items[i].err = err
		default:
			p.items[i].data = data
		}
	}
	r.pages[c] = p
	return p, nil
}

// retain forgets every page except the full ones after the given cursors,
// so memory stays at one page per projection however long the catch-up. A
// page that was not full is read again next time: more events may have
// become readable since.
func (r *pageReader) retain(cursors []eventstore.Cursor) {
	keep := make(map[eventstore.Cursor]bool, len(cursors))
	for _, c := range cursors {
		keep[c] = true
	}
	for c, p := range r.pages {
		if !keep[c] || !p.full {
			delete(r.pages, c)
		}
	}
}
