package eventstore_test

import (
	"context"
	"errors"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gantryhq/gantry/eventstore"
)

// An append runs in a span of its own, child of the caller's; a sampled
// span is recorded in the events' metadata, an unsampled one is not.
func TestAppendRecordsItsSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sampler sdktrace.Sampler
		record  bool
	}{
		{"sampled", sdktrace.AlwaysSample(), true},
		{"not sampled", sdktrace.NeverSample(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tt.sampler), sdktrace.WithSpanProcessor(spans))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			pool := newPool(t)
			s := eventstore.New(pool, testRegistry(t), eventstore.WithTracerProvider(tp))
			t.Cleanup(s.Close)

			ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
			stream := eventstore.Stream{Type: "thing", ID: "thg_traced"}
			if _, err := s.Append(ctx, stream, eventstore.NoStream, thingCreated{Name: "a"}, thingRenamed{Name: "b"}); err != nil {
				t.Fatal(err)
			}
			parent.End()
			loaded, err := s.Load(context.Background(), stream.ID)
			if err != nil {
				t.Fatal(err)
			}
			ended := spans.Ended()
			if !tt.record {
				if len(ended) != 0 || loaded[0].Metadata.TraceID != "" || loaded[0].Metadata.SpanContext().IsValid() {
					t.Fatalf("unsampled: %d spans exported, metadata %+v; want none recorded", len(ended), loaded[0].Metadata)
				}
				return
			}
			var appendSpan sdktrace.ReadOnlySpan
			for _, sp := range ended {
				if sp.Name() == "eventstore.append" {
					appendSpan = sp
				}
			}
			if appendSpan == nil || appendSpan.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Fatalf("spans %v: want eventstore.append, child of the request", ended)
			}
			for _, e := range loaded {
				sc := e.Metadata.SpanContext()
				if sc.TraceID() != parent.SpanContext().TraceID() || sc.SpanID() != appendSpan.SpanContext().SpanID() || !sc.IsSampled() {
					t.Errorf("%s metadata %+v: want the append span %s", e.Type, e.Metadata, appendSpan.SpanContext().SpanID())
				}
			}
			origin, err := eventstore.Origin(context.Background(), pool, stream.ID)
			if err != nil || origin.TraceID != loaded[0].Metadata.TraceID || origin.SpanID != loaded[0].Metadata.SpanID {
				t.Fatalf("origin = %+v, %v; want the first event's metadata %+v", origin, err, loaded[0].Metadata)
			}
		})
	}
}

func TestOriginOfNoStream(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t)
	if _, err := eventstore.Origin(context.Background(), pool, "thg_none"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("origin of a stream without events: %v, want ErrNotFound", err)
	}
}

// CheckpointLags counts the events after each checkpoint, up to the limit,
// and the age of the oldest; a missing checkpoint is at the start.
func TestCheckpointLags(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	var last eventstore.Event
	for i := range 5 {
		evs, err := s.Append(ctx, eventstore.Stream{Type: "thing", ID: "thg_lag"}, int64(i), thingRenamed{N: i})
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			last = evs[0]
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO checkpoints (name, tx_id, position) VALUES ('behind', $1, $2), ('done', 9223372036854775807, 0)`,
		last.Tx, last.Position); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		limit  int
		events int64
		aged   bool
	}{
		{"missing", 100, 5, true},
		{"missing", 3, 3, true},
		{"behind", 100, 2, true},
		{"done", 100, 0, false},
	}
	for _, tt := range tests {
		lags, err := eventstore.CheckpointLags(ctx, pool, []string{tt.name}, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		l := lags[tt.name]
		if l.Events != tt.events || (l.Seconds > 0) != tt.aged || l.Seconds < 0 {
			t.Errorf("%s (limit %d): %+v, want %d events, aged %v", tt.name, tt.limit, l, tt.events, tt.aged)
		}
	}
}
