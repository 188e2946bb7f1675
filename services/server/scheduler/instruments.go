package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantryhq/gantry/services/platform/metrics"
)

// Why an assignment did not happen, as the refusals counter labels it.
const (
	reasonRunNotWaiting = "run_not_waiting"
	reasonRunMoved      = "run_moved"
	reasonWorkerNotIdle = "worker_not_idle"
	reasonConflict      = "conflict"
	reasonRefused       = "refused"
)

// instruments are the scheduler's metrics.
type instruments struct {
	passes      prometheus.Counter
	assignments *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	pickup      *prometheus.HistogramVec
}

func newInstruments(reg *metrics.Registry) (instruments, error) {
	passes, err := reg.Counter("gantry_scheduler_passes_total", "Scheduling passes started.")
	if err != nil {
		return instruments{}, err
	}
	assignments, err := reg.Counter("gantry_scheduler_assignments_total", "Runs assigned to a worker, by pool.", "pool")
	if err != nil {
		return instruments{}, err
	}
	refusals, err := reg.Counter("gantry_scheduler_refusals_total",
		"Assignments not made because the run or worker changed meanwhile, by reason.", "reason")
	if err != nil {
		return instruments{}, err
	}
	pickup, err := reg.Histogram("gantry_run_pickup_seconds",
		"Time from a run becoming READY (or CONFIRMED) to its assignment to a worker, by pool.", metrics.LatencyBuckets, "pool")
	if err != nil {
		return instruments{}, err
	}
	return instruments{passes: passes.WithLabelValues(), assignments: assignments, refusals: refusals, pickup: pickup}, nil
}
