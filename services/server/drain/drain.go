// Package drain is Gantry's drain: the asynchronous work the API and the
// scheduler hand off. It acts on recorded webhook deliveries (queueing the
// runs a push or a pull request asks for), queues the runs of fired cron
// schedules, and reports the state of webhook runs to their commits.
//
// The work arrives as relayed events on the EVENTS stream, through durable
// JetStream consumers that every drain shares (each message goes to one
// drain), routed by Watermill: a watermill-nats JetStream subscriber, the
// retry middleware for transient failures, the poison queue for work that
// keeps failing (recorded as an event an operator can list and replay),
// and correlation ids carried from the event that caused the work into
// the events it appends. Acting twice is harmless: a delivery is acted on
// at its aggregate's version, a fired tick's run has its id already.
package drain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/server/commands"
)

// DefaultDurable prefixes the names of the drain's durable consumers
// ("drain-deliveries", …). Never rename it casually: a new name starts new
// consumers, which take the stream from its start.
const DefaultDurable = "drain"

// Commands is the command layer the drain acts through; *commands.Service
// satisfies it.
type Commands interface {
	ActOnDelivery(ctx context.Context, id string, plan commands.DeliveryPlanner) (delivery.Status, []delivery.TriggeredRun, error)
	PoisonDelivery(ctx context.Context, id, reason string) error
	QueueScheduledRun(ctx context.Context, r commands.ScheduledRun) error
	RecordScheduleFailure(ctx context.Context, id string, tick time.Time, reason string) error
}

// Stacks lists the stacks tied to an integration; *projections.Queries
// satisfies it.
type Stacks interface {
	StacksOfIntegration(ctx context.Context, integrationID string) ([]projections.TrackedStack, error)
}

// Config configures a Drain.
type Config struct {
	// Connect opens a NATS connection of the drain's own: the subscriber
	// drains it when the drain stops. Required.
	Connect func() (*nats.Conn, error)
	// Registry decodes the relayed events (eventstore.DomainRegistry). Required.
	Registry *eventstore.Registry
	// Commands acts on the work. Required.
	Commands Commands
	// Stacks finds the stacks a delivery concerns. Required.
	Stacks Stacks
	// Statuses reports webhook runs' states to their commits; nil reports
	// nothing.
	Statuses StatusReporter
	// Durable prefixes the durable consumers' names. Default DefaultDurable.
	Durable string
	// Retries is how often a failing piece of work is retried in place
	// before it goes to the poison queue. Default 3.
	Retries int
	// RetryInterval is the first pause between retries; it doubles up to
	// 2 s. Default 100 ms.
	RetryInterval time.Duration
	// Logger receives the drain's log. Default: discard.
	Logger *slog.Logger
}

// Validate reports every missing or bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.Connect == nil {
		errs = append(errs, errors.New("connect is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("registry is required"))
	}
	if c.Commands == nil {
		errs = append(errs, errors.New("commands are required"))
	}
	if c.Stacks == nil {
		errs = append(errs, errors.New("stacks are required"))
	}
	if c.Retries < 0 {
		errs = append(errs, fmt.Errorf("retries %d: must not be negative", c.Retries))
	}
	if c.RetryInterval < 0 {
		errs = append(errs, fmt.Errorf("retry interval %s: must not be negative", c.RetryInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("drain config: %w", err)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Drain routes the asynchronous work; Run starts it.
type Drain struct {
	cfg Config
	log *slog.Logger
}

// New returns a drain.
func New(cfg Config) (*Drain, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Drain{cfg: cfg, log: cfg.Logger.With("component", "drain")}, nil
}

// The drain's topics: one durable consumer each, on these subjects of the
// EVENTS stream.
const (
	topicDeliveries = "deliveries"
	topicSchedules  = "schedules"
	topicStatuses   = "statuses"
)

func subject(streamType, eventType string) string {
	return eventstore.SubjectPrefix + "." + streamType + ".*." + eventType
}

var topicSubjects = map[string][]string{
	topicDeliveries: {
		subject(eventstore.StreamDelivery, "WebhookDeliveryReceived"),
		subject(eventstore.StreamDelivery, "WebhookDeliveryReplayRequested"),
	},
	topicSchedules: {subject(eventstore.StreamSchedule, "ScheduleFired")},
	topicStatuses: {
		subject(eventstore.StreamDelivery, "WebhookDeliveryHandled"),
		subject(eventstore.StreamRun, "RunPhaseStarted"),
		subject(eventstore.StreamRun, "RunFinished"),
		subject(eventstore.StreamRun, "RunFailed"),
		subject(eventstore.StreamRun, "RunStopped"),
		subject(eventstore.StreamRun, "RunCanceled"),
		subject(eventstore.StreamRun, "RunDiscarded"),
		subject(eventstore.StreamRun, "RunSkipped"),
		subject(eventstore.StreamRun, "RunUnconfirmed"),
	},
}

// ackWait is how long JetStream waits for a message's acknowledgement
// before it delivers it again (to any drain): longer than the retries of
// one message take.
const ackWait = time.Minute

// Run routes work until ctx ends, then returns nil. It fails when it
// cannot subscribe (NATS or the stream not there yet), for its supervisor
// to run it again.
func (d *Drain) Run(ctx context.Context) error {
	nc, err := d.cfg.Connect()
	if err != nil {
		return fmt.Errorf("drain: connect to NATS: %w", err)
	}
	logger := watermill.NewSlogLoggerWithLevelMapping(d.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		Conn: nc, Logger: logger, AckWaitTimeout: ackWait,
		ResourceInitializer: d.consumer,
		Unmarshaler:         unmarshaler{},
		NakDelay:            wmjetstream.NewStaticDelay(time.Second),
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("drain: subscriber: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("drain: router: %w", err)
	}
	poison, err := middleware.PoisonQueue(poisonRecorder{d: d}, "poison")
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("drain: poison queue: %w", err)
	}
	router.AddMiddleware(
		middleware.CorrelationID,
		poison,
		middleware.Retry{
			MaxRetries: d.cfg.Retries, InitialInterval: d.cfg.RetryInterval, MaxInterval: 2 * time.Second, Multiplier: 2,
			RandomizationFactor: 0.5, Logger: logger,
		}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler(topicDeliveries, topicDeliveries, sub, d.handleDelivery)
	router.AddConsumerHandler(topicSchedules, topicSchedules, sub, d.handleSchedule)
	if d.cfg.Statuses != nil {
		router.AddConsumerHandler(topicStatuses, topicStatuses, sub, d.handleStatus)
	}
	d.log.InfoContext(ctx, "drain started", "durable", d.cfg.Durable)
	// The router stops only after the connection has drained: the
	// subscriber hands each message to the router on a channel it closes
	// when its context ends, and a message arriving then would be sent on
	// the closed channel. Draining first stops the deliveries and lets the
	// router finish those under way.
	rctx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			drainConn(nc)
		case <-stopped:
		}
		stopRouter()
	}()
	err = router.Run(rctx)
	close(stopped)
	_ = sub.Close() // closes nc too
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("the router stopped")
	}
	return fmt.Errorf("drain: %w", err)
}

// drainTimeout bounds the drain of the connection when the drain stops.
const drainTimeout = 10 * time.Second

// drainConn drains nc: no new messages, those delivered handled, then
// closed; after drainTimeout it is closed anyway.
func drainConn(nc *nats.Conn) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(drainTimeout):
		nc.Close()
	}
}

// consumer creates (or binds to) the durable consumer of a topic. It
// delivers the stream from its start when it is first made: a delivery
// recorded before any drain ran is still acted on (and one acted on
// already changes nothing).
func (d *Drain) consumer(ctx context.Context, js jetstream.JetStream, topic string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := js.CreateOrUpdateConsumer(cctx, eventstore.EventsStream, jetstream.ConsumerConfig{
		Durable:        d.cfg.Durable + "-" + topic,
		Description:    "Gantry drains: " + topic,
		FilterSubjects: topicSubjects[topic],
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        ackWait,
		MaxAckPending:  1000,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("durable consumer %s-%s: %w", d.cfg.Durable, topic, err)
	}
	return c, nil, nil
}

// Metadata keys the unmarshaler sets on every message.
const (
	metaStreamID   = "gantry_stream_id"
	metaStreamType = "gantry_stream_type"
	metaEventType  = "gantry_event_type"
)

// unmarshaler turns a relayed event into a Watermill message whose
// correlation id is the event's (or its id). It never fails: the
// subscriber cannot take an error, so an undecodable body becomes a
// message the handlers acknowledge and log.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(m jetstream.Msg) (*message.Message, error) {
	e, err := eventstore.DecodeMessage(m.Data())
	if err != nil {
		return message.NewMessage(watermill.NewUUID(), m.Data()), nil
	}
	msg := message.NewMessage(e.ID, m.Data())
	msg.Metadata.Set(metaStreamID, e.StreamID)
	msg.Metadata.Set(metaStreamType, e.StreamType)
	msg.Metadata.Set(metaEventType, e.Type)
	cid := e.Metadata.CorrelationID
	if cid == "" {
		cid = e.ID
	}
	middleware.SetCorrelationID(cid, msg)
	return msg, nil
}

// decode returns the relayed event of msg and its domain value, and the
// context its appends carry: the drain as actor, the correlation id of the
// event that caused the work, the event as the cause.
func (d *Drain) decode(msg *message.Message) (context.Context, eventstore.Event, any, error) {
	e, err := eventstore.DecodeMessage(msg.Payload)
	if err != nil {
		return nil, e, nil, err
	}
	v, err := d.cfg.Registry.Decode(e)
	if err != nil {
		return nil, e, nil, err
	}
	ctx := eventstore.WithMetadata(msg.Context(), eventstore.Metadata{
		Actor: commands.DrainActor, CorrelationID: middleware.MessageCorrelationID(msg), CausationID: e.ID,
	})
	return ctx, e, v, nil
}
