package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
)

const testTimeout = 10 * time.Second

var eventTime = time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)

func protoEvent(position int64) *gantryv1.Event {
	return &gantryv1.Event{
		Id:            "0195f0c2-0000-7000-8000-000000000001",
		Position:      position,
		Tx:            9001,
		StreamId:      "run_01JABC",
		StreamType:    "run",
		Version:       7,
		Type:          "RunConfirmed",
		SchemaVersion: 2,
		PayloadJson:   `{"note": "<ok> & done", "n": 1}`,
		Metadata:      &gantryv1.EventMetadata{Actor: "user:ada", CorrelationId: "corr-1", CausationId: "cause-1", TraceId: "trace-1"},
		Time:          timestamppb.New(eventTime),
	}
}

func TestEventJSONLine(t *testing.T) {
	full := `{"position":42,"tx":9001,"id":"0195f0c2-0000-7000-8000-000000000001","stream_id":"run_01JABC","stream_type":"run",` +
		`"version":7,"type":"RunConfirmed","schema_version":2,"payload":{"note":"<ok> & done","n":1},` +
		`"metadata":{"actor":"user:ada","correlation_id":"corr-1","causation_id":"cause-1","trace_id":"trace-1"},` +
		`"time":"2026-03-04T05:06:07.891011121Z"}` + "\n"
	tests := []struct {
		name    string
		event   func(*gantryv1.Event)
		want    string
		wantErr string
	}{
		{name: "full event", event: func(*gantryv1.Event) {}, want: full},
		{
			name: "no metadata, array payload, whole-second time",
			event: func(e *gantryv1.Event) {
				e.Metadata = nil
				e.PayloadJson = "[1,\n 2]"
				e.Time = timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			},
			want: `{"position":42,"tx":9001,"id":"0195f0c2-0000-7000-8000-000000000001","stream_id":"run_01JABC","stream_type":"run",` +
				`"version":7,"type":"RunConfirmed","schema_version":2,"payload":[1,2],"metadata":{},"time":"2026-01-02T03:04:05Z"}` + "\n",
		},
		{name: "invalid payload", event: func(e *gantryv1.Event) { e.PayloadJson = `{"n":` }, wantErr: "position 42: payload is not valid JSON"},
		{name: "empty payload", event: func(e *gantryv1.Event) { e.PayloadJson = "" }, wantErr: "payload is not valid JSON"},
		{name: "missing time", event: func(e *gantryv1.Event) { e.Time = nil }, wantErr: "position 42: time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := protoEvent(42)
			tt.event(e)
			got, err := eventJSONLine(e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("eventJSONLine: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("line\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEventJSONLineNil(t *testing.T) {
	if _, err := eventJSONLine(nil); err == nil {
		t.Error("eventJSONLine(nil) succeeded")
	}
}

// eventServer is a Connect EventService that records what it was asked and
// sends canned events; with follow it then waits for the client to leave.
type eventServer struct {
	gantryv1connect.UnimplementedEventServiceHandler
	events []*gantryv1.Event
	err    *connect.Error

	mu     sync.Mutex
	req    *gantryv1.StreamRequest
	header http.Header
}

func (s *eventServer) Stream(ctx context.Context, req *connect.Request[gantryv1.StreamRequest], stream *connect.ServerStream[gantryv1.StreamResponse]) error {
	s.mu.Lock()
	s.req = proto.Clone(req.Msg).(*gantryv1.StreamRequest)
	s.header = req.Header().Clone()
	s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, e := range s.events {
		if err := stream.Send(&gantryv1.StreamResponse{Event: e}); err != nil {
			return err
		}
	}
	if req.Msg.GetFollow() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *eventServer) received() (*gantryv1.StreamRequest, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.req, s.header
}

func startEventServer(t *testing.T, s *eventServer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(gantryv1connect.NewEventServiceHandler(s))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(httpClient.CloseIdleConnections)
	return srv.URL
}

// noConfigDir is a configuration directory that does not exist: tests
// that name none must not read the credentials of whoever runs them.
var noConfigDir = filepath.Join(os.TempDir(), "gantry-test-no-config-dir")

// env returns a getenv of vars; GANTRY_CONFIG_DIR defaults to noConfigDir.
func env(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if k == auth.ConfigDirEnv {
			return noConfigDir
		}
		return ""
	}
}

func TestEventsCommandPrintsJSONLines(t *testing.T) {
	s := &eventServer{events: []*gantryv1.Event{protoEvent(3), protoEvent(4)}}
	url := startEventServer(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"events", "--from", "3", "--stream", "run_01JABC", "--stream-type", "run", "--type", "RunConfirmed"},
		env(map[string]string{"GANTRY_SERVER": url, "GANTRY_TOKEN": "tok-123"}), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	var want strings.Builder
	for _, e := range s.events {
		line, err := eventJSONLine(e)
		if err != nil {
			t.Fatal(err)
		}
		want.Write(line)
	}
	if stdout.String() != want.String() {
		t.Errorf("stdout\n%s\nwant\n%s", stdout.String(), want.String())
	}
	req, header := s.received()
	wantReq := &gantryv1.StreamRequest{FromPosition: 3, StreamId: "run_01JABC", StreamType: "run", EventType: "RunConfirmed"}
	if !proto.Equal(req, wantReq) {
		t.Errorf("server got request %v, want %v", req, wantReq)
	}
	if got := header.Get("Authorization"); got != "Bearer tok-123" {
		t.Errorf("Authorization %q, want \"Bearer tok-123\"", got)
	}
}

func TestEventsCommandWithoutTokenSendsNoAuthorization(t *testing.T) {
	s := &eventServer{}
	url := startEventServer(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"events", "--server", url}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if _, header := s.received(); header.Get("Authorization") != "" {
		t.Errorf("Authorization %q sent without a token", header.Get("Authorization"))
	}
}

func TestEventsCommandShowsConnectError(t *testing.T) {
	s := &eventServer{err: connect.NewError(connect.CodeInvalidArgument, errorString("from_position: must not be negative"))}
	url := startEventServer(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"events", "--server", url}, env(nil), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "gantry: events: invalid_argument: from_position: must not be negative\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q on error", stdout.String())
	}
}

func TestEventsCommandRejectsNegativeFrom(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"events", "--from", "-1"}, env(nil), &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "gantry: --from -1: must not be negative") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// signalWriter is a stdout that reports its first write.
type signalWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
	once    sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.once.Do(func() { close(w.written) })
	return w.buf.Write(p)
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestEventsFollowEndsCleanlyOnInterrupt(t *testing.T) {
	s := &eventServer{events: []*gantryv1.Event{protoEvent(1)}}
	url := startEventServer(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	// interrupt stands in for the root context that SIGINT cancels.
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()

	stdout := &signalWriter{written: make(chan struct{})}
	var stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(runCtx, []string{"events", "--follow", "--server", url}, env(nil), stdout, &stderr)
	}()

	select {
	case <-stdout.written:
	case <-ctx.Done():
		t.Fatal("no event printed while following")
	}
	interrupt()
	select {
	case code := <-exit:
		if code != 0 || stderr.Len() != 0 {
			t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("events --follow still running after interrupt")
	}
	want, err := eventJSONLine(protoEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != string(want) {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if req, _ := s.received(); !req.GetFollow() {
		t.Error("server was not asked to follow")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
