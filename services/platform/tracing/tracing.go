// Package tracing sets up OpenTelemetry tracing for a Gantry process and
// carries trace context across NATS, so that a run's trace goes from the
// API call that queued it through the event store, the relay and the
// scheduler to the worker, and back with the worker's reports.
//
// Tracing is off unless an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, read
// by cmd/gantry). Off, components get a nil trace.TracerProvider and do no
// tracing work at all; Tracer turns nil into a no-op tracer for them.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// OTLP protocols (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// shutdownTimeout bounds flushing the last spans at exit.
const shutdownTimeout = 5 * time.Second

// Config says where spans are exported.
type Config struct {
	// Endpoint is the OTLP endpoint's base URL (OTEL_EXPORTER_OTLP_ENDPOINT):
	// spans go to <Endpoint>/v1/traces over HTTP, or to Endpoint over gRPC.
	Endpoint string
	// TracesEndpoint is the full URL of the traces endpoint
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); it wins over Endpoint.
	TracesEndpoint string
	// Protocol is ProtocolHTTP (default) or ProtocolGRPC.
	Protocol string
	// ServiceName is the service.name resource attribute (OTEL_SERVICE_NAME
	// wins when set in the process's environment).
	ServiceName string
	// Version is the service.version resource attribute.
	Version string
	// Sampler decides which traces are kept. Default: the SDK's, which
	// follows OTEL_TRACES_SAMPLER and keeps every trace otherwise.
	Sampler sdktrace.Sampler
}

// Enabled reports whether an endpoint is configured.
func (c Config) Enabled() bool { return c.Endpoint != "" || c.TracesEndpoint != "" }

// Validate reports every problem at once, naming the variable.
func (c Config) Validate() error {
	var errs []error
	for _, e := range []struct{ name, v string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.TracesEndpoint},
	} {
		if e.v == "" {
			continue
		}
		u, err := url.Parse(e.v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w", e.name, e.v, err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("%s %q: want an http:// or https:// URL", e.name, e.v))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("%s %q: no host", e.name, e.v))
		}
	}
	if c.Protocol != "" && c.Protocol != ProtocolHTTP && c.Protocol != ProtocolGRPC {
		errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: use %s or %s", c.Protocol, ProtocolHTTP, ProtocolGRPC))
	}
	return errors.Join(errs...)
}

// Tracing is a process's tracer provider and its exporter.
type Tracing struct {
	tp *sdktrace.TracerProvider // nil when off
}

// Start makes the tracer provider cfg describes; when no endpoint is
// configured, tracing is off and Provider returns nil. The exporter
// connects lazily: an unreachable collector loses spans, never requests.
// Settings Config does not carry (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, _CERTIFICATE, OTEL_RESOURCE_ATTRIBUTES, ...) are read by the
// OpenTelemetry SDK from the process's environment.
func Start(ctx context.Context, cfg Config) (*Tracing, error) {
	if !cfg.Enabled() {
		return &Tracing{}, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// Later options win: the environment's service name and attributes
	// override the defaults given here.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if cfg.Sampler != nil {
		opts = append(opts, sdktrace.WithSampler(cfg.Sampler))
	}
	return &Tracing{tp: sdktrace.NewTracerProvider(opts...)}, nil
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	if cfg.Protocol == ProtocolGRPC {
		endpoint := cmpOr(cfg.TracesEndpoint, cfg.Endpoint)
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	}
	endpoint := cfg.TracesEndpoint
	if endpoint == "" {
		endpoint = strings.TrimRight(cfg.Endpoint, "/") + "/v1/traces"
	}
	return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Provider returns the tracer provider, or nil when tracing is off.
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp
}

// Flush exports the spans buffered so far.
func (t *Tracing) Flush(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Tracer returns tp's tracer of the named component, or a no-op tracer
// when tp is nil (tracing off).
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return tp.Tracer("github.com/gantryhq/gantry/" + name)
}

// Propagator is the one propagation format Gantry speaks: W3C trace
// context (the traceparent and tracestate headers).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Inject writes the trace context of ctx's span into NATS message headers.
func Inject(ctx context.Context, h nats.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	Propagator.Inject(ctx, headerCarrier(h))
}

// Extract returns ctx with the remote span context carried in NATS message
// headers, if any, as the parent of the spans started from it.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator.Extract(ctx, headerCarrier(h))
}

// headerCarrier adapts NATS headers to the propagator. Keys are kept as
// the propagator names them (lower case, as W3C specifies), not
// canonicalised as HTTP headers are.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
