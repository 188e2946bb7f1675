package instrumentation

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
)

// lagLimit bounds the events a lag counts: past it the gauge stays at the
// limit, and a scrape costs no more.
const lagLimit = 100_000

// scrapeTimeout bounds the read-model queries of one scrape.
const scrapeTimeout = 5 * time.Second

var (
	runsDesc = prometheus.NewDesc("gantry_runs", "Runs that have not ended, by worker pool and state (from the read models).",
		[]string{"pool", "state"}, nil)
	queueDepthDesc = prometheus.NewDesc("gantry_pool_queue_depth", "Runs waiting for a worker of the pool (READY, or CONFIRMED and waiting to apply).",
		[]string{"pool"}, nil)
	queueAgeDesc = prometheus.NewDesc("gantry_pool_queue_oldest_seconds", "How long the oldest run waiting for a worker of the pool has waited.",
		[]string{"pool"}, nil)
	workersDesc = prometheus.NewDesc("gantry_workers", "Live workers (neither lost nor exited) by pool and status (IDLE, BUSY, DRAINED).",
		[]string{"pool", "status"}, nil)
	relayLagEventsDesc = prometheus.NewDesc("gantry_relay_lag_events", "Committed events the relay has not yet published to JetStream (counted up to 100000).",
		nil, nil)
	relayLagSecondsDesc = prometheus.NewDesc("gantry_relay_lag_seconds", "Age of the oldest committed event the relay has not yet published; 0 when caught up.",
		nil, nil)
	projectorLagEventsDesc = prometheus.NewDesc("gantry_projector_lag_events", "Committed events a projection has not yet applied (counted up to 100000).",
		[]string{"projection"}, nil)
	projectorLagSecondsDesc = prometheus.NewDesc("gantry_projector_lag_seconds", "Age of the oldest committed event a projection has not yet applied; 0 when caught up.",
		[]string{"projection"}, nil)
)

// Gauges reads the run, queue, worker and lag figures from the read models
// and checkpoints at each scrape: the database is where they are true, and
// every server replica shows the same values.
type Gauges struct {
	pool        *pgxpool.Pool
	queries     *projections.Queries
	projections []string
	log         *slog.Logger
}

// NewGauges returns the collector of the read models in pool, with the lag
// of each named projection.
func NewGauges(pool *pgxpool.Pool, projectionNames []string, log *slog.Logger) *Gauges {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gauges{pool: pool, queries: projections.NewQueries(pool), projections: projectionNames, log: log.With("component", "metrics")}
}

// Describe implements prometheus.Collector.
func (g *Gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{runsDesc, queueDepthDesc, queueAgeDesc, workersDesc,
		relayLagEventsDesc, relayLagSecondsDesc, projectorLagEventsDesc, projectorLagSecondsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A query that fails leaves its
// metrics out of the scrape, as an error the handler logs.
func (g *Gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	fail := func(d *prometheus.Desc, err error) {
		g.log.WarnContext(ctx, "metrics query failed", "err", err)
		ch <- prometheus.NewInvalidMetric(d, err)
	}
	if runs, err := g.queries.OpenRunCounts(ctx); err != nil {
		fail(runsDesc, err)
	} else {
		for _, c := range runs {
			ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(c.Count), c.PoolID, c.Status)
		}
	}
	if queues, err := g.queries.QueueStats(ctx); err != nil {
		fail(queueDepthDesc, err)
	} else {
		for _, q := range queues {
			ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.Depth), q.PoolID)
			ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, q.OldestSeconds, q.PoolID)
		}
	}
	if workers, err := g.queries.LiveWorkerCounts(ctx); err != nil {
		fail(workersDesc, err)
	} else {
		for _, c := range workers {
			ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(c.Count), c.PoolID, c.Status)
		}
	}
	names := []string{eventstore.RelayCheckpointName}
	for _, p := range g.projections {
		names = append(names, projections.CheckpointName(p))
	}
	lags, err := eventstore.CheckpointLags(ctx, g.pool, names, lagLimit)
	if err != nil {
		fail(relayLagEventsDesc, err)
		return
	}
	relay := lags[eventstore.RelayCheckpointName]
	ch <- prometheus.MustNewConstMetric(relayLagEventsDesc, prometheus.GaugeValue, float64(relay.Events))
	ch <- prometheus.MustNewConstMetric(relayLagSecondsDesc, prometheus.GaugeValue, relay.Seconds)
	for _, p := range g.projections {
		l := lags[projections.CheckpointName(p)]
		ch <- prometheus.MustNewConstMetric(projectorLagEventsDesc, prometheus.GaugeValue, float64(l.Events), p)
		ch <- prometheus.MustNewConstMetric(projectorLagSecondsDesc, prometheus.GaugeValue, l.Seconds, p)
	}
}
