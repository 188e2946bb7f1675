package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantryhq/gantry/services/platform/metrics"
)

// MetricsInterceptor observes the duration of every API call by procedure
// and Connect code ("ok" for success) in gantry_api_request_duration_seconds.
// A server stream is observed when it ends: its duration is the stream's
// life, not a latency.
type MetricsInterceptor struct {
	durations *prometheus.HistogramVec
}

// NewMetricsInterceptor registers the API's histogram in reg.
func NewMetricsInterceptor(reg *metrics.Registry) (*MetricsInterceptor, error) {
	h, err := reg.Histogram("gantry_api_request_duration_seconds",
		"Duration of API calls by procedure and Connect code (ok for success).", metrics.LatencyBuckets, "procedure", "code")
	if err != nil {
		return nil, err
	}
	return &MetricsInterceptor{durations: h}, nil
}

func (m *MetricsInterceptor) observe(procedure string, start time.Time, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
		if errors.Is(err, context.Canceled) {
			code = connect.CodeCanceled.String()
		}
	}
	m.durations.WithLabelValues(procedure, code).Observe(time.Since(start).Seconds())
}

// WrapUnary implements connect.Interceptor.
func (m *MetricsInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		if !req.Spec().IsClient {
			m.observe(req.Spec().Procedure, start, err)
		}
		return resp, err
	}
}

// WrapStreamingClient implements connect.Interceptor; clients are not
// observed.
func (m *MetricsInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (m *MetricsInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		m.observe(conn.Spec().Procedure, start, err)
		return err
	}
}
