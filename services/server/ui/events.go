package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// eventsPageSize is how many events a page of the audit trail shows.
const eventsPageSize = 50

type eventFilter struct {
	StreamType, EventType, StreamID string
}

func (f eventFilter) empty() bool { return f == eventFilter{} }

func (f eventFilter) query(from int64) string {
	v := url.Values{}
	if f.StreamType != "" {
		v.Set("stream_type", f.StreamType)
	}
	if f.EventType != "" {
		v.Set("event_type", f.EventType)
	}
	if f.StreamID != "" {
		v.Set("stream_id", f.StreamID)
	}
	v.Set("from", strconv.FormatInt(from, 10))
	return v.Encode()
}

type eventRow struct {
	Position                      int64
	Time                          time.Time
	StreamType, StreamID, Type    string
	Actor, Payload, CorrelationID string
}

type eventsData struct {
	Filter eventFilter
	Events []eventRow
	// NextQuery is the query of the next page ("" on the last one),
	// LiveQuery the live stream's, OldestQuery and LatestQuery the ends'.
	NextQuery, LiveQuery, OldestQuery, LatestQuery string
	From                                           int64
}

func rowOf(e *gantryv1.Event) eventRow {
	return eventRow{Position: e.GetPosition(), Time: e.GetTime().AsTime(), StreamType: e.GetStreamType(), StreamID: e.GetStreamId(),
		Type: e.GetType(), Actor: e.GetMetadata().GetActor(), Payload: e.GetPayloadJson(), CorrelationID: e.GetMetadata().GetCorrelationId()}
}

// eventsPage shows a page of the audit trail (EventService.Stream without
// follow, cut after a page), filtered by stream type, event type and
// stream; without ?from, the latest events.
func (u *UI) eventsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	q := r.URL.Query()
	f := eventFilter{StreamType: strings.TrimSpace(q.Get("stream_type")), EventType: strings.TrimSpace(q.Get("event_type")), StreamID: strings.TrimSpace(q.Get("stream_id"))}
	head, err := u.cfg.Head(ctx)
	if err != nil {
		u.log.ErrorContext(ctx, "ui: read the event head", "err", err.Error())
		u.render(w, r, http.StatusServiceUnavailable, "error", page{Title: "Unavailable", Data: errorData{Message: "The audit trail cannot be read now; try again."}})
		return
	}
	latest := max(0, head-eventsPageSize+1)
	var from int64
	switch v := q.Get("from"); {
	case v != "":
		if from, err = strconv.ParseInt(v, 10, 64); err != nil || from < 0 {
			u.render(w, r, http.StatusBadRequest, "error", page{Title: "Bad request", Data: errorData{Message: "from: must be an event position (0 or more)."}})
			return
		}
	case f.empty():
		from = latest
	}
	streamCtx, stop := context.WithCancel(ctx)
	defer stop()
	stream, err := u.c.events.Stream(streamCtx, connect.NewRequest(&gantryv1.StreamRequest{FromPosition: from, StreamType: f.StreamType, EventType: f.EventType, StreamId: f.StreamID}))
	if err != nil {
		u.fail(w, r, "read the audit trail", err)
		return
	}
	d := eventsData{Filter: f, From: from, OldestQuery: f.query(0), LatestQuery: f.query(latest), LiveQuery: f.query(head + 1)}
	more := false
	for stream.Receive() {
		if len(d.Events) == eventsPageSize {
			more = true
			break
		}
		d.Events = append(d.Events, rowOf(stream.Msg().GetEvent()))
	}
	stop()
	if err := stream.Err(); err != nil && !more && !errors.Is(err, context.Canceled) {
		u.fail(w, r, "read the audit trail", err)
		return
	}
	_ = stream.Close()
	if more {
		d.NextQuery = f.query(d.Events[len(d.Events)-1].Position + 1)
	}
	u.render(w, r, http.StatusOK, "events", page{Title: "Audit trail", Data: d})
}

// liveEvents relays the audit trail as it grows (EventService.Stream with
// follow) as Server-Sent Events named "event", JSON each.
func (u *UI) liveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := strconv.ParseInt(q.Get("from"), 10, 64)
	if err != nil || from < 0 {
		http.Error(w, "from: must be an event position (0 or more)", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := u.c.events.Stream(ctx, connect.NewRequest(&gantryv1.StreamRequest{FromPosition: from, Follow: true,
		StreamType: q.Get("stream_type"), EventType: q.Get("event_type"), StreamId: q.Get("stream_id")}))
	if err != nil {
		http.Error(w, "the audit trail cannot be followed: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer stream.Close()
	sse, ok := startEvents(w)
	if !ok {
		return
	}
	for stream.Receive() {
		e := rowOf(stream.Msg().GetEvent())
		b, _ := json.Marshal(map[string]any{"position": e.Position, "time": e.Time.UTC().Format(timeLayout), "stream_type": e.StreamType,
			"stream_id": e.StreamID, "type": e.Type, "actor": e.Actor})
		if sse.send("event", string(b)) != nil {
			return
		}
	}
	if err := stream.Err(); err != nil && !errors.Is(err, context.Canceled) {
		u.log.WarnContext(ctx, "ui: event stream ended", "err", err.Error())
	}
	_ = sse.send("end", "")
}

// timeLayout is how pages show times (UTC).
const timeLayout = "2006-01-02 15:04:05 UTC"
