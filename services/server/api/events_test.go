package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// testTimeout bounds every wait for the server in these tests.
const testTimeout = 10 * time.Second

var baseTime = time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)

func event(position, tx int64, streamType, streamID, eventType string) eventstore.Event {
	return eventstore.Event{
		ID:            "evt_" + streamID + "_" + eventType,
		Position:      position,
		Tx:            tx,
		StreamID:      streamID,
		StreamType:    streamType,
		Version:       position,
		Type:          eventType,
		SchemaVersion: 1,
		Payload:       json.RawMessage(`{"n": 1}`),
		Metadata:      eventstore.Metadata{Actor: "user:ada"},
		Time:          baseTime.Add(time.Duration(position) * time.Second),
	}
}

// handlerDone reports the error each streaming handler returned.
type handlerDone chan error

func (d handlerDone) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (d handlerDone) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (d handlerDone) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		d <- err
		return err
	}
}

// startEventService serves an EventService over a real HTTP server and
// returns a Connect client for it.
func startEventService(t *testing.T, cfg EventServiceConfig, opts ...connect.HandlerOption) gantryv1connect.EventServiceClient {
	t.Helper()
	svc, err := NewEventService(cfg)
	if err != nil {
		t.Fatalf("NewEventService: %v", err)
	}
	route := svc.Route(opts...)
	mux := http.NewServeMux()
	mux.Handle(route.Path, route.Handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return gantryv1connect.NewEventServiceClient(srv.Client(), srv.URL)
}

// openStream starts a Stream call that the test's cleanup closes.
func openStream(t *testing.T, ctx context.Context, client gantryv1connect.EventServiceClient, req *gantryv1.StreamRequest) *connect.ServerStreamForClient[gantryv1.StreamResponse] {
	t.Helper()
	stream, err := client.Stream(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	t.Cleanup(func() { _ = stream.Close() })
	return stream
}

// receive reads n events from the stream.
func receive(t *testing.T, stream *connect.ServerStreamForClient[gantryv1.StreamResponse], n int) []int64 {
	t.Helper()
	var positions []int64
	for len(positions) < n {
		if !stream.Receive() {
			t.Fatalf("stream ended after positions %v, want %d events: %v", positions, n, stream.Err())
		}
		positions = append(positions, stream.Msg().GetEvent().GetPosition())
	}
	return positions
}

// receiveAll reads until the stream ends and fails unless it ended cleanly.
func receiveAll(t *testing.T, stream *connect.ServerStreamForClient[gantryv1.StreamResponse]) []int64 {
	t.Helper()
	var positions []int64
	for stream.Receive() {
		positions = append(positions, stream.Msg().GetEvent().GetPosition())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream ended with %v after positions %v", err, positions)
	}
	return positions
}

func TestEventToProto(t *testing.T) {
	e := eventstore.Event{
		ID:            "0195f0c2-0000-7000-8000-000000000001",
		Position:      42,
		Tx:            9001,
		StreamID:      "run_01JABC",
		StreamType:    "run",
		Version:       7,
		Type:          "RunConfirmed",
		SchemaVersion: 3,
		// Odd spacing and key order must survive: audit needs the stored text.
		Payload: json.RawMessage(`{"z": 1,  "a": ["<b>", null]}`),
		Metadata: eventstore.Metadata{
			Actor:         "user:ada",
			CorrelationID: "corr-1",
			CausationID:   "cause-1",
			TraceID:       "4bf92f3577b34da6a3ce929d0e0e4736",
		},
		Time: baseTime,
	}
	want := &gantryv1.Event{
		Id:            "0195f0c2-0000-7000-8000-000000000001",
		Position:      42,
		Tx:            9001,
		StreamId:      "run_01JABC",
		StreamType:    "run",
		Version:       7,
		Type:          "RunConfirmed",
		SchemaVersion: 3,
		PayloadJson:   `{"z": 1,  "a": ["<b>", null]}`,
		Metadata: &gantryv1.EventMetadata{
			Actor:         "user:ada",
			CorrelationId: "corr-1",
			CausationId:   "cause-1",
			TraceId:       "4bf92f3577b34da6a3ce929d0e0e4736",
		},
		Time: &timestamppb.Timestamp{Seconds: baseTime.Unix(), Nanos: 891011121},
	}
	if got := eventToProto(e); !proto.Equal(got, want) {
		t.Errorf("eventToProto:\n got %v\nwant %v", got, want)
	}
}

func TestStreamCatchUpEnds(t *testing.T) {
	// Commit order differs from position order: position 3 committed before 2.
	mem := newMemEvents(
		event(1, 10, "run", "run_a", "RunQueued"),
		event(3, 11, "run", "run_b", "RunQueued"),
		event(2, 12, "run", "run_a", "RunStarted"),
		event(4, 12, "run", "run_a", "RunFinished"),
		event(5, 13, "stack", "stk_a", "StackCreated"),
	)
	client := startEventService(t, EventServiceConfig{Events: mem, Changes: mem, BatchSize: 2})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	got := receiveAll(t, openStream(t, ctx, client, &gantryv1.StreamRequest{}))
	if want := []int64{1, 3, 2, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("positions %v, want %v (commit order)", got, want)
	}
}

func TestStreamEmptyStoreEnds(t *testing.T) {
	client := startEventService(t, EventServiceConfig{Events: newMemEvents()})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if got := receiveAll(t, openStream(t, ctx, client, &gantryv1.StreamRequest{})); len(got) != 0 {
		t.Errorf("positions %v from an empty store", got)
	}
}

func TestStreamFromPosition(t *testing.T) {
	mem := newMemEvents(
		event(1, 10, "run", "run_a", "RunQueued"),
		event(2, 11, "run", "run_a", "RunStarted"),
		event(3, 12, "run", "run_a", "RunPlanned"),
		event(4, 12, "run", "run_a", "RunConfirmed"),
		event(5, 13, "run", "run_a", "RunFinished"),
	)
	client := startEventService(t, EventServiceConfig{Events: mem})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	got := receiveAll(t, openStream(t, ctx, client, &gantryv1.StreamRequest{FromPosition: 3}))
	if want := []int64{3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	if _, froms := mem.seen(); !slices.Equal(froms, []int64{3}) {
		t.Errorf("CursorFrom called with %v, want [3]", froms)
	}
}

func TestStreamPassesFilter(t *testing.T) {
	mem := newMemEvents(
		event(1, 10, "run", "run_a", "RunQueued"),
		event(2, 11, "run", "run_b", "RunQueued"),
		event(3, 12, "stack", "run_a", "RunQueued"),
		event(4, 13, "run", "run_a", "RunStarted"),
		event(5, 14, "run", "run_a", "RunQueued"),
	)
	client := startEventService(t, EventServiceConfig{Events: mem, BatchSize: 1})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	got := receiveAll(t, openStream(t, ctx, client, &gantryv1.StreamRequest{
		StreamId:   "run_a",
		StreamType: "run",
		EventType:  "RunQueued",
	}))
	if want := []int64{1, 5}; !slices.Equal(got, want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	filters, _ := mem.seen()
	if len(filters) == 0 {
		t.Fatal("ReadAll was never called")
	}
	want := eventstore.Filter{StreamID: "run_a", StreamType: "run", EventType: "RunQueued"}
	for i, f := range filters {
		if f != want {
			t.Errorf("ReadAll call %d got filter %+v, want %+v", i, f, want)
		}
	}
}

func TestStreamFollowDeliversNewEventsUntilCanceled(t *testing.T) {
	mem := newMemEvents(
		event(1, 10, "run", "run_a", "RunQueued"),
		event(2, 11, "run", "run_a", "RunStarted"),
	)
	done := make(handlerDone, 1)
	// Polling is effectively off: new events must arrive through Changed.
	client := startEventService(t, EventServiceConfig{Events: mem, Changes: mem, PollInterval: time.Hour},
		connect.WithInterceptors(done))
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()

	stream := openStream(t, streamCtx, client, &gantryv1.StreamRequest{Follow: true})
	if got := receive(t, stream, 2); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("caught up with positions %v, want [1 2]", got)
	}
	mem.append(event(3, 12, "run", "run_a", "RunPlanned"), event(4, 12, "run", "run_a", "RunConfirmed"))
	if got := receive(t, stream, 2); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("followed positions %v, want [3 4]", got)
	}
	mem.append(event(5, 13, "run", "run_a", "RunFinished"))
	if got := receive(t, stream, 1); !slices.Equal(got, []int64{5}) {
		t.Fatalf("followed positions %v, want [5]", got)
	}

	cancelStream()
	if stream.Receive() {
		t.Fatalf("received position %d after cancel", stream.Msg().GetEvent().GetPosition())
	}
	if code := connect.CodeOf(stream.Err()); code != connect.CodeCanceled {
		t.Errorf("client error %v, want code canceled", stream.Err())
	}
	select {
	case err := <-done:
		if code := connect.CodeOf(err); code != connect.CodeCanceled {
			t.Errorf("handler returned %v, want code canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("handler still running after the client canceled")
	}
}

func TestStreamFollowPollsWithoutNotifier(t *testing.T) {
	mem := newMemEvents(event(1, 10, "run", "run_a", "RunQueued"))
	client := startEventService(t, EventServiceConfig{Events: mem, PollInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	stream := openStream(t, ctx, client, &gantryv1.StreamRequest{Follow: true})
	if got := receive(t, stream, 1); !slices.Equal(got, []int64{1}) {
		t.Fatalf("caught up with positions %v, want [1]", got)
	}
	mem.append(event(2, 11, "run", "run_a", "RunStarted"))
	if got := receive(t, stream, 1); !slices.Equal(got, []int64{2}) {
		t.Fatalf("followed positions %v, want [2]", got)
	}
}

func TestStreamRejectsNegativeFromPosition(t *testing.T) {
	mem := newMemEvents(event(1, 10, "run", "run_a", "RunQueued"))
	client := startEventService(t, EventServiceConfig{Events: mem})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	stream := openStream(t, ctx, client, &gantryv1.StreamRequest{FromPosition: -1})
	if stream.Receive() {
		t.Fatalf("received position %d, want an error", stream.Msg().GetEvent().GetPosition())
	}
	err := stream.Err()
	if code := connect.CodeOf(err); code != connect.CodeInvalidArgument {
		t.Fatalf("error %v, want code invalid_argument", err)
	}
	var cerr *connect.Error
	if !errors.As(err, &cerr) || !strings.Contains(cerr.Message(), "from_position") {
		t.Errorf("error %v does not name from_position", err)
	}
	if filters, froms := mem.seen(); len(filters)+len(froms) != 0 {
		t.Errorf("store was read (%d reads, cursor lookups %v) for an invalid request", len(filters), froms)
	}
}

func TestStreamHidesStoreErrors(t *testing.T) {
	mem := newMemEvents()
	mem.readErr = errors.New("dial tcp 10.1.2.3:5432: connection refused")
	var logs syncBuffer
	client := startEventService(t, EventServiceConfig{Events: mem, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	stream := openStream(t, ctx, client, &gantryv1.StreamRequest{})
	if stream.Receive() {
		t.Fatal("received an event, want an error")
	}
	err := stream.Err()
	if code := connect.CodeOf(err); code != connect.CodeInternal {
		t.Fatalf("error %v, want code internal", err)
	}
	if strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("client error %q leaks the store's error", err)
	}
	if !strings.Contains(logs.String(), "10.1.2.3") {
		t.Errorf("log %q lacks the store's error", logs.String())
	}
}

func TestNewEventServiceValidates(t *testing.T) {
	_, err := NewEventService(EventServiceConfig{BatchSize: -1, PollInterval: -time.Second})
	if err == nil {
		t.Fatal("NewEventService accepted a config without events and with negative sizes")
	}
	for _, want := range []string{"events", "batch size", "poll interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
