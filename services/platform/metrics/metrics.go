// Package metrics is the Prometheus registry of a Gantry process: the one
// place components register their counters and histograms, and what the
// instrumentation listener serves as /metrics.
//
// Components take a *Registry in their configuration and make their
// instruments with it when they are built. A nil *Registry is valid and
// makes instruments that count but are exported nowhere, so a component
// built without one (a test, a benchmark's baseline) needs no second code
// path. Instruments of the same name made twice (two components counting
// the same thing) are one instrument.
package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Prefix starts the name of every Gantry metric.
const Prefix = "gantry_"

// LatencyBuckets are the histogram buckets, in seconds, of request and
// pick-up latencies: 1 ms to 1 minute.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Registry holds a process's metrics. Its methods are safe for concurrent
// use; a nil *Registry registers nothing.
type Registry struct {
	prom *prometheus.Registry
}

// NewRegistry returns a registry with the Go runtime's and the process's
// standard collectors (go_*, process_*).
func NewRegistry() *Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{prom: r}
}

// Counter returns the counter vector name with labels, registering it on
// first use.
func (r *Registry) Counter(name, help string, labels ...string) (*prometheus.CounterVec, error) {
	if err := checkName(name, help); err != nil {
		return nil, err
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	return register(r, c)
}

// Histogram returns the histogram vector name with buckets and labels,
// registering it on first use.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) (*prometheus.HistogramVec, error) {
	if err := checkName(name, help); err != nil {
		return nil, err
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	return register(r, h)
}

// Register adds a collector whose values are read at scrape time (gauges
// of the read models, lags).
func (r *Registry) Register(c prometheus.Collector) error {
	if r == nil {
		return nil
	}
	if err := r.prom.Register(c); err != nil {
		return fmt.Errorf("register metrics collector: %w", err)
	}
	return nil
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format. A collector that fails is logged and left out of that scrape; the
// others are still served.
func (r *Registry) Handler(log *slog.Logger) http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{
		ErrorLog:          slogPrinter{log},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// namePattern is what a metric name may be: Prefix, then lower-case
// letters, digits and '_', which every Prometheus version accepts.
var namePattern = regexp.MustCompile(`^` + Prefix + `[a-z0-9_]+$`)

func checkName(name, help string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("metric %q: the name must be %q followed by lower-case letters, digits or '_'", name, Prefix)
	}
	if strings.TrimSpace(help) == "" {
		return fmt.Errorf("metric %q: help is required", name)
	}
	return nil
}

// register adds c to r, or returns the instrument already registered under
// its name.
func register[C prometheus.Collector](r *Registry, c C) (C, error) {
	if r == nil {
		return c, nil
	}
	err := r.prom.Register(c)
	var exists prometheus.AlreadyRegisteredError
	if errors.As(err, &exists) {
		if prev, ok := exists.ExistingCollector.(C); ok {
			return prev, nil
		}
	}
	if err != nil {
		var zero C
		return zero, fmt.Errorf("register metric: %w", err)
	}
	return c, nil
}

// slogPrinter adapts a logger to promhttp's error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	if p.log != nil {
		p.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
	}
}
