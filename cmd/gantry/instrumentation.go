package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"gocloud.dev/blob"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/gantryhq/gantry/services/platform/metrics"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/platform/tracing"
	"github.com/gantryhq/gantry/services/server/api"
	"github.com/gantryhq/gantry/services/server/instrumentation"
)

// observability is what a server process measures itself with: metrics
// served on the instrumentation listener, the readiness of its
// dependencies, and tracing.
type observability struct {
	// metrics is nil without an instrumentation listener: nothing would
	// serve them.
	metrics   *metrics.Registry
	tracer    trace.TracerProvider // nil: tracing off
	readiness *instrumentation.Readiness
	server    *instrumentation.Server // nil without a listener
}

// newObservability binds the instrumentation listener (when cfg names
// one) and registers the read models' gauges, with the lag of each of
// projections.
func newObservability(cfg serverConfig, pool *pgxpool.Pool, nc *nats.Conn, bucket *blob.Bucket, projections []string, log *slog.Logger) (*observability, error) {
	o := &observability{
		tracer:    cfg.tracing,
		readiness: instrumentation.NewReadiness(0, instrumentation.Postgres(pool), instrumentation.NATS(nc), instrumentation.Bucket(bucket)),
	}
	if cfg.instrumentationListen == "" {
		return o, nil
	}
	o.metrics = metrics.NewRegistry()
	if err := o.metrics.Register(instrumentation.NewGauges(pool, projections, log)); err != nil {
		return nil, err
	}
	srv, err := instrumentation.New(instrumentation.Config{Listen: cfg.instrumentationListen, Metrics: o.metrics, Readiness: o.readiness, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--instrumentation-listen: %w", err)
	}
	o.server = srv
	return o, nil
}

// components is the instrumentation listener, when there is one.
func (o *observability) components() []supervisor.Component {
	if o.server == nil {
		return nil
	}
	srv := o.server
	return []supervisor.Component{{Name: "instrumentation", Run: func(ctx context.Context) error { return supervisor.Permanent(srv.Serve(ctx)) }}}
}

// started makes /startup answer 200, and returns the start-up line.
func (o *observability) started() []component {
	if o.server == nil {
		return nil
	}
	o.server.Started()
	return []component{{"probes", "http://" + o.server.Addr().String() + " (/startup, /readiness, /liveness, /metrics)"}}
}

// close releases the listener if it never served (after serving, the
// listener is closed already and this does nothing).
func (o *observability) close() {
	if o.server != nil {
		_ = o.server.Close()
	}
}

// apiInterceptors are the interceptors of every Connect service, outermost
// first: the request metrics (which see every call, refused ones too), the
// trace, then authn.
func (o *observability) apiInterceptors(authn connect.Interceptor) ([]connect.Interceptor, error) {
	var out []connect.Interceptor
	if o.metrics != nil {
		m, err := api.NewMetricsInterceptor(o.metrics)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if o.tracer != nil {
		// Callers' traces are continued (trust remote): a CI job that
		// traces its call to TriggerRun sees the run in its trace.
		t, err := otelconnect.NewInterceptor(otelconnect.WithTracerProvider(o.tracer), otelconnect.WithPropagator(tracing.Propagator),
			otelconnect.WithoutMetrics(), otelconnect.WithTrustRemote())
		if err != nil {
			return nil, fmt.Errorf("tracing interceptor: %w", err)
		}
		out = append(out, t)
	}
	return append(out, authn), nil
}

// grpcRoutes are the standard gRPC health (answered with the process's
// readiness) and server reflection services of the API's Connect services
// in routes, so that grpcurl and `buf curl --reflect` work. They need no
// API token.
func (o *observability) grpcRoutes(routes []api.Route) []api.Route {
	var services []string
	for _, r := range routes {
		name := strings.Trim(r.Path, "/")
		if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name)); err == nil {
			if _, ok := d.(protoreflect.ServiceDescriptor); ok {
				services = append(services, name)
			}
		}
	}
	reflector := grpcreflect.NewStaticReflector(append([]string{grpchealth.HealthV1ServiceName}, services...)...)
	health := route(grpchealth.NewHandler(instrumentation.NewHealthChecker(o.readiness, services...)))
	v1 := route(grpcreflect.NewHandlerV1(reflector))
	v1alpha := route(grpcreflect.NewHandlerV1Alpha(reflector))
	return append(routes, health, v1, v1alpha)
}

func route(path string, h http.Handler) api.Route { return api.Route{Path: path, Handler: h} }
