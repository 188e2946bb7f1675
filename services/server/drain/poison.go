package drain

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/eventstore"
)

// poisonRecorder is the poison queue's publisher: instead of another topic,
// work that kept failing becomes an event on its own aggregate, where an
// operator lists it (gantry vcs deliveries) and replays it. A delivery is
// WebhookDeliveryPoisoned, a fired tick's run ScheduleRunFailed; a commit
// status that could not be sent is only logged. When recording fails, the
// message is not acknowledged and comes back.
type poisonRecorder struct{ d *Drain }

func (p poisonRecorder) Publish(_ string, msgs ...*message.Message) error {
	var errs []error
	for _, msg := range msgs {
		errs = append(errs, p.record(msg))
	}
	return errors.Join(errs...)
}

func (poisonRecorder) Close() error { return nil }

func (p poisonRecorder) record(msg *message.Message) error {
	reason := msg.Metadata.Get(middleware.ReasonForPoisonedKey)
	ctx, e, v, err := p.d.decode(msg)
	if err != nil {
		return nil // nothing to record it on
	}
	log := p.d.log.With("stream_id", e.StreamID, "event_type", e.Type, "reason", reason)
	switch e.StreamType {
	case eventstore.StreamDelivery:
		log.WarnContext(ctx, "delivery goes to the poison queue")
		return p.d.cfg.Commands.PoisonDelivery(context.WithoutCancel(ctx), e.StreamID, reason)
	case eventstore.StreamSchedule:
		if f, ok := v.(schedule.ScheduleFired); ok {
			log.WarnContext(ctx, "a scheduled run could not be queued")
			return p.d.cfg.Commands.RecordScheduleFailure(context.WithoutCancel(ctx), e.StreamID, f.Tick, reason)
		}
	default:
		log.WarnContext(ctx, "work given up after retries")
	}
	return nil
}

// msgCorrelation is the correlation id the drain's appends carry.
func msgCorrelation(ctx context.Context) string { return eventstore.MetadataFrom(ctx).CorrelationID }
