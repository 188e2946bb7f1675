package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/gantryhq/gantry/services/platform/tracing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     tracing.Config
		wantErr string // "" for valid
	}{
		{"off", tracing.Config{}, ""},
		{"http", tracing.Config{Endpoint: "http://collector:4318"}, ""},
		{"grpc", tracing.Config{Endpoint: "https://collector:4317", Protocol: tracing.ProtocolGRPC}, ""},
		{"traces endpoint", tracing.Config{TracesEndpoint: "http://collector:4318/v1/traces"}, ""},
		{"no scheme", tracing.Config{Endpoint: "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"no host", tracing.Config{TracesEndpoint: "http://"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"protocol", tracing.Config{Endpoint: "http://c:4318", Protocol: "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate() = %v, want an error naming %q", tt.name, err, tt.wantErr)
		}
	}
}

// Without an endpoint tracing is off: no provider, and the tracer of a nil
// provider does nothing.
func TestOffWithoutEndpoint(t *testing.T) {
	tr, err := tracing.Start(context.Background(), tracing.Config{ServiceName: "gantry-test"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Provider() != nil {
		t.Fatal("tracing without an endpoint: want no provider")
	}
	if _, span := tracing.Tracer(nil, "x").Start(context.Background(), "op"); span.IsRecording() {
		t.Fatal("the tracer of a nil provider records")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tracing.Start(context.Background(), tracing.Config{Endpoint: "nope"}); err == nil {
		t.Fatal("a bad endpoint: want an error")
	}
}

// Both exporters start without reaching the collector, and stop.
func TestStartAndShutdown(t *testing.T) {
	for _, protocol := range []string{tracing.ProtocolHTTP, tracing.ProtocolGRPC} {
		tr, err := tracing.Start(context.Background(), tracing.Config{Endpoint: "http://127.0.0.1:1", Protocol: protocol, ServiceName: "gantry-test"})
		if err != nil {
			t.Fatalf("%s: %v", protocol, err)
		}
		if tr.Provider() == nil {
			t.Fatalf("%s: no provider", protocol)
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatalf("%s: shutdown: %v", protocol, err)
		}
	}
}

// A span's context crosses NATS headers: the receiver's span is its child.
func TestInjectExtractOverNATSHeaders(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, sender := tp.Tracer("test").Start(context.Background(), "send")
	msg := nats.NewMsg("gantry.test")
	tracing.Inject(ctx, msg.Header)
	if got := msg.Header.Get("traceparent"); !strings.Contains(got, sender.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent header %q: want the sender's trace", got)
	}
	_, receiver := tp.Tracer("test").Start(tracing.Extract(context.Background(), msg.Header), "receive")
	receiver.End()
	sender.End()
	if receiver.SpanContext().TraceID() != sender.SpanContext().TraceID() {
		t.Fatal("the receiver's span is in another trace")
	}
	if got := spans.Ended()[0].Parent(); got.SpanID() != sender.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("receiver's parent %v, want the sender's span, remote", got)
	}
	// Nothing to carry: no header, and nothing extracted.
	empty := nats.NewMsg("gantry.test")
	tracing.Inject(context.Background(), empty.Header)
	if len(empty.Header) != 0 || trace.SpanContextFromContext(tracing.Extract(context.Background(), empty.Header)).IsValid() {
		t.Fatalf("without a span: headers %v", empty.Header)
	}
}
