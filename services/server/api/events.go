package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/cenkalti/backoff/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// EventReader reads all events in commit order; *eventstore.Store satisfies it.
type EventReader interface {
	// ReadAll returns up to limit events strictly after `after` in commit
	// order, matching f. An empty result means the reader is caught up.
	ReadAll(ctx context.Context, after eventstore.Cursor, f eventstore.Filter, limit int) ([]eventstore.Event, error)
	// CursorFrom returns the cursor from which reading starts at global
	// position p.
	CursorFrom(ctx context.Context, p int64) (eventstore.Cursor, error)
}

// ChangeNotifier wakes followers when events were appended;
// *eventstore.Watcher satisfies it.
type ChangeNotifier interface {
	// Changed returns a channel closed at the next append notification.
	Changed() <-chan struct{}
}

// EventServiceConfig configures an EventService.
type EventServiceConfig struct {
	// Events is the store to read from. Required.
	Events EventReader
	// Changes wakes following streams as soon as events are appended. If nil,
	// followers only poll.
	Changes ChangeNotifier
	// Logger receives request failures. Default: discard.
	Logger *slog.Logger
	// BatchSize is how many events one read returns at most. Default 1000.
	BatchSize int
	// PollInterval is how often a follower reads again without a
	// notification, covering lost or failed notifications. Default 1 s.
	PollInterval time.Duration
}

func (c *EventServiceConfig) validate() error {
	var errs []error
	if c.Events == nil {
		errs = append(errs, errors.New("events: required"))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: must not be negative", c.BatchSize))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %s: must not be negative", c.PollInterval))
	}
	return errors.Join(errs...)
}

func (c *EventServiceConfig) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
}

// EventService serves gantry.v1.EventService: the audit stream of every
// event in commit order.
type EventService struct {
	cfg EventServiceConfig
	log *slog.Logger
}

var _ gantryv1connect.EventServiceHandler = (*EventService)(nil)

// NewEventService returns an EventService reading from cfg.Events.
func NewEventService(cfg EventServiceConfig) (*EventService, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("event service config: %w", err)
	}
	cfg.defaults()
	return &EventService{cfg: cfg, log: cfg.Logger.With("service", gantryv1connect.EventServiceName)}, nil
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *EventService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewEventServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// Stream sends the events the request selects, in commit order. Without
// follow it returns once caught up; with follow it keeps sending new events
// until the client goes away or the server shuts down.
func (s *EventService) Stream(ctx context.Context, req *connect.Request[gantryv1.StreamRequest], stream *connect.ServerStream[gantryv1.StreamResponse]) error {
	if err := s.stream(ctx, req.Msg, stream.Send); err != nil {
		return connectError(s.log, err)
	}
	return nil
}

func (s *EventService) stream(ctx context.Context, msg *gantryv1.StreamRequest, send func(*gantryv1.StreamResponse) error) error {
	if msg.GetFromPosition() < 0 {
		return &invalidArgumentError{field: "from_position", reason: fmt.Sprintf("must not be negative, got %d", msg.GetFromPosition())}
	}
	filter := eventstore.Filter{StreamID: msg.GetStreamId(), StreamType: msg.GetStreamType(), EventType: msg.GetEventType()}
	cursor, err := s.cfg.Events.CursorFrom(ctx, msg.GetFromPosition())
	if err != nil {
		return fmt.Errorf("start at position %d: %w", msg.GetFromPosition(), err)
	}
	stopping := serverStopping(ctx)
	retry := followerBackoff()
	// The first read is small and later ones grow to BatchSize: a client
	// that reads a page and hangs up (the web UI's audit trail) costs a
	// small read, one that reads everything soon gets whole batches.
	size := min(firstEventBatch, s.cfg.BatchSize)
	for {
		// Take the wake-up channel before reading, so an append that lands
		// between the read and the wait still wakes this follower.
		var changed <-chan struct{}
		if msg.GetFollow() && s.cfg.Changes != nil {
			changed = s.cfg.Changes.Changed()
		}
		batch, err := s.cfg.Events.ReadAll(ctx, cursor, filter, size)
		if err != nil {
			err = fmt.Errorf("read events after %d/%d: %w", cursor.Tx, cursor.Position, err)
			if !msg.GetFollow() || ctx.Err() != nil {
				return err
			}
			// A follower waits the database out (a restart, an upgrade)
			// and goes on from its cursor: nothing missed, nothing twice.
			s.log.WarnContext(ctx, "events follower: reading failed; trying again", "err", err)
			if err := wait(ctx, nil, stopping, retry.NextBackOff()); err != nil {
				return err
			}
			continue
		}
		retry.Reset()
		for _, e := range batch {
			if err := send(&gantryv1.StreamResponse{Event: eventToProto(e)}); err != nil {
				if ctx.Err() != nil {
					// The client went away; the failed write only echoes that.
					return ctx.Err()
				}
				return fmt.Errorf("send event at position %d: %w", e.Position, err)
			}
			cursor = e.Cursor()
		}
		if len(batch) > 0 {
			size = min(size*4, s.cfg.BatchSize)
			continue
		}
		if !msg.GetFollow() {
			return nil
		}
		if err := wait(ctx, changed, stopping, s.cfg.PollInterval); err != nil {
			return err
		}
	}
}

// firstEventBatch is the size of a stream's first read.
const firstEventBatch = 64

// followerBackoff paces a follower's reads while what it reads from is
// down: from 100 ms up to 5 s apart.
func followerBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 5 * time.Second}
}

// wait blocks until changed is closed, the poll interval passes, the server
// stops or ctx ends.
func wait(ctx context.Context, changed, stopping <-chan struct{}, poll time.Duration) error {
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-stopping:
		return errServerStopping
	case <-changed:
	case <-t.C:
	}
	return nil
}

// eventToProto converts a stored event to its API form. The payload is
// passed on as the exact JSON text the store holds.
func eventToProto(e eventstore.Event) *gantryv1.Event {
	return &gantryv1.Event{
		Id:            e.ID,
		Position:      e.Position,
		Tx:            e.Tx,
		StreamId:      e.StreamID,
		StreamType:    e.StreamType,
		Version:       e.Version,
		Type:          e.Type,
		SchemaVersion: int32(e.SchemaVersion),
		PayloadJson:   string(e.Payload),
		Metadata: &gantryv1.EventMetadata{
			Actor:         e.Metadata.Actor,
			CorrelationId: e.Metadata.CorrelationID,
			CausationId:   e.Metadata.CausationID,
			TraceId:       e.Metadata.TraceID,
		},
		Time: timestamppb.New(e.Time),
	}
}
