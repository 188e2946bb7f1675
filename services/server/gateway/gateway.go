package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/metrics"
	"github.com/gantryhq/gantry/services/platform/tracing"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// QueueGroup is the NATS queue group of the gateway's subscriptions: each
// report and heartbeat goes to one replica.
const QueueGroup = "gateway"

// Defaults of Config.
const (
	// DefaultHeartbeatTimeout and the sweep every quarter of it find a
	// killed launcher's worker lost within 15 s; launchers heartbeat every
	// 2 s, so five heartbeats in a row must go missing first.
	DefaultHeartbeatTimeout = 10 * time.Second
	DefaultActor            = "system:gateway"
	defaultHandlers         = 8
)

// Config configures a Gateway.
type Config struct {
	Pool *pgxpool.Pool // the worker_heartbeats table
	// Commands decides what reports mean; a *commands.Service.
	Commands Commands
	NATS     *nats.Conn // a service connection
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// HeartbeatTimeout is how long a worker may go without a heartbeat,
	// while the gateway can receive and record heartbeats, before it is
	// marked lost (default 10s).
	HeartbeatTimeout time.Duration
	// SweepInterval is how often lost workers are looked for (default a
	// quarter of HeartbeatTimeout).
	SweepInterval time.Duration
	// Now defaults to time.Now. It times heartbeats; the times of events
	// are the command layer's clock.
	Now func() time.Time
	// Actor of the events the gateway decides on its own (lost workers);
	// report events carry the reporting worker's id. Default "system:gateway".
	Actor string
	// Handlers is how many messages are handled at once (default 8).
	Handlers int
	// Metrics receives the count of reports by kind and answer. Nil: not
	// exported.
	Metrics *metrics.Registry
	// TracerProvider traces each report as a child of the launcher's span
	// (the traceparent header), so the events it appends join the run's
	// trace. Nil: no tracing.
	TracerProvider trace.TracerProvider
}

// Gateway serves the worker protocol; see the package documentation.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	reports *prometheus.CounterVec
	tracer  trace.Tracer // nil: tracing off
	// subs are the running Run's subscriptions, for tests to drop.
	subsMu sync.Mutex
	subs   []*nats.Subscription
	// health is since when heartbeats could be received and recorded.
	health heartbeatHealth
}

// New checks cfg and returns a Gateway; Run starts it.
func New(cfg Config) (*Gateway, error) {
	if cfg.Pool == nil || cfg.Commands == nil || cfg.NATS == nil {
		return nil, errors.New("gateway: Pool, Commands and NATS are required")
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = cfg.HeartbeatTimeout / 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Actor == "" {
		cfg.Actor = DefaultActor
	}
	if cfg.Handlers <= 0 {
		cfg.Handlers = defaultHandlers
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reports, err := cfg.Metrics.Counter("gantry_gateway_reports_total",
		"Worker reports answered, by kind and answer (ok, or the refusal's code).", "kind", "code")
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, log: log.With("component", "gateway"), reports: reports}
	if cfg.TracerProvider != nil {
		g.tracer = tracing.Tracer(cfg.TracerProvider, "gateway")
	}
	return g, nil
}

func (g *Gateway) now() time.Time { return g.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run subscribes to every pool's reports and heartbeats and sweeps for lost
// workers until ctx ends. Messages under way when ctx ends are finished. It
// fails when a subscription closes, for its supervisor to run it again.
func (g *Gateway) Run(ctx context.Context) error {
	msgs := make(chan *nats.Msg, 256)
	reports, err := g.cfg.NATS.ChanQueueSubscribe(protocol.AllReports, QueueGroup, msgs)
	if err != nil {
		return fmt.Errorf("gateway: subscribe to reports: %w", err)
	}
	heartbeats, err := g.cfg.NATS.ChanQueueSubscribe(protocol.AllHeartbeats, QueueGroup, msgs)
	if err != nil {
		_ = reports.Unsubscribe()
		return fmt.Errorf("gateway: subscribe to heartbeats: %w", err)
	}
	forwards, err := g.forwardEvents(msgs)
	if err != nil {
		_ = reports.Unsubscribe()
		_ = heartbeats.Unsubscribe()
		return err
	}
	subs := append([]*nats.Subscription{reports, heartbeats}, forwards...)
	unsubscribe := func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	lost := bus.WatchClosed(subs...)
	if err := g.cfg.NATS.FlushTimeout(10 * time.Second); err != nil {
		unsubscribe()
		return fmt.Errorf("gateway: subscribe: %w", err)
	}
	g.setSubs(subs)
	defer g.setSubs(nil)
	// Silence before this gateway ran is no worker's fault: the server was
	// down (or restarting) and nobody could hear them.
	g.health.down(g.now())
	g.observeNATS()
	g.log.InfoContext(ctx, "gateway started", "heartbeat_timeout", g.cfg.HeartbeatTimeout.String())

	// Handlers outlive ctx by the time it takes to finish the message in
	// hand: a report half-handled would leave the launcher without a reply.
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var wg sync.WaitGroup
	for range g.cfg.Handlers {
		wg.Go(func() {
			for {
				select {
				case <-work.Done():
					return
				case m := <-msgs:
					g.handle(work, m)
				}
			}
		})
	}
	ticker := time.NewTicker(g.cfg.SweepInterval)
	defer ticker.Stop()
	var failed error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case subject := <-lost:
			failed, done = fmt.Errorf("gateway: subscription to %s closed", subject), true
		case <-ticker.C:
			g.observeNATS()
			if _, err := g.Sweep(ctx); err != nil && ctx.Err() == nil {
				g.log.ErrorContext(ctx, "sweep for lost workers failed", "err", err)
			}
			if err := g.sweepReplies(ctx); err != nil && ctx.Err() == nil {
				g.log.ErrorContext(ctx, "sweep of report answers failed", "err", err)
			}
		}
	}
	unsubscribe()
	stop()
	wg.Wait()
	return failed
}

// observeNATS notes an outage of the gateway's NATS connection, during
// which no heartbeat could arrive.
func (g *Gateway) observeNATS() {
	g.health.observeNATS(g.now(), g.cfg.NATS.IsConnected(), g.cfg.NATS.Stats().Reconnects)
}

func (g *Gateway) setSubs(subs []*nats.Subscription) {
	g.subsMu.Lock()
	defer g.subsMu.Unlock()
	g.subs = subs
}

// handle serves one report or heartbeat.
func (g *Gateway) handle(ctx context.Context, m *nats.Msg) {
	if pool, worker, ok := protocol.ParseHeartbeatSubject(m.Subject); ok {
		g.heartbeat(ctx, m, pool, worker)
		return
	}
	if strings.HasPrefix(m.Subject, eventstore.SubjectPrefix+".") {
		g.forward(ctx, m)
		return
	}
	pool, kind, ok := protocol.ParseReportSubject(m.Subject)
	if !ok {
		g.log.WarnContext(ctx, "message on an unknown subject", "subject", m.Subject)
		return
	}
	log := g.log.With("pool_id", pool, "kind", kind)
	if g.tracer != nil {
		var span trace.Span
		ctx, span = g.tracer.Start(tracing.Extract(ctx, m.Header), "gateway.report "+kind, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("gantry.pool_id", pool), attribute.String("gantry.report", kind)))
		defer span.End()
	}
	reportID := m.Header.Get(protocol.HeaderReportID)
	if len(reportID) > maxReportIDLength {
		g.respond(ctx, m, protocol.Reply{Code: protocol.CodeInvalid, Error: fmt.Sprintf("%s: longer than %d characters", protocol.HeaderReportID, maxReportIDLength)})
		return
	}
	if reportID != "" {
		stored, found, err := g.storedReply(ctx, pool, reportID)
		if err != nil {
			g.respond(ctx, m, g.internal(ctx, log, err))
			return
		}
		if found {
			log.InfoContext(ctx, "repeated report answered as before", "report_id", reportID)
			g.respond(ctx, m, stored)
			return
		}
	}
	reply, err := g.report(ctx, pool, kind, m.Data)
	if err != nil {
		var re *replyError
		if errors.As(err, &re) {
			log.InfoContext(ctx, "report refused", "code", re.code, "err", re.msg)
			reply = protocol.Reply{Error: re.msg, Code: re.code}
		} else {
			reply = g.internal(ctx, log, err)
		}
	} else {
		reply.OK = true
	}
	if reportID != "" {
		if err := g.storeReply(ctx, pool, reportID, reply); err != nil {
			log.WarnContext(ctx, "could not keep the answer for a repeat", "err", err)
		}
	}
	g.respond(ctx, m, reply)
}

// internal is the one place a failure of the server becomes what a
// launcher is told: "internal", with a reference to the log line that
// holds the detail. The detail (a database's socket path, user or name, a
// host) never leaves the server. A failure to reach the database also
// stops the heartbeat clock: heartbeats cannot be recorded either.
func (g *Gateway) internal(ctx context.Context, log *slog.Logger, err error) protocol.Reply {
	ref := uuid.NewString()
	log.ErrorContext(ctx, "report failed", "err", err, "ref", ref)
	g.health.down(g.now())
	return protocol.Reply{Code: protocol.CodeInternal, Error: "the server could not handle the report now (ref " + ref + "); send it again"}
}

func (g *Gateway) respond(ctx context.Context, m *nats.Msg, r protocol.Reply) {
	if _, kind, ok := protocol.ParseReportSubject(m.Subject); ok {
		code := r.Code
		if code == "" {
			code = "ok"
		}
		g.reports.WithLabelValues(kind, code).Inc()
		if code != "ok" {
			trace.SpanFromContext(ctx).SetStatus(codes.Error, code)
		}
	}
	if m.Reply == "" {
		return
	}
	body, err := json.Marshal(r)
	if err == nil {
		err = m.Respond(body)
	}
	if err != nil {
		g.log.WarnContext(ctx, "could not reply", "subject", m.Subject, "err", err)
	}
}

// replyError is a refusal the launcher is told about, with its code.
type replyError struct {
	code string
	msg  string
}

func (e *replyError) Error() string { return e.code + ": " + e.msg }
