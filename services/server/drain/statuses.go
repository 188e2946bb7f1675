package drain

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/projections"
)

// Stack is a stack as the drain matches deliveries against it.
type Stack = projections.TrackedStack

// StatusReporter reports the current state of a run queued by a webhook
// delivery to the delivery's commit. Reporting the current state (not the
// event's) makes late or repeated messages harmless.
type StatusReporter interface {
	Report(ctx context.Context, runID string) error
}

// handleStatus reports the state of the runs an event concerns: those a
// delivery queued, or the run whose state changed.
func (d *Drain) handleStatus(msg *message.Message) error {
	ctx, e, v, err := d.decode(msg)
	if err != nil {
		d.log.Warn("undecodable event dropped", "err", err)
		return nil
	}
	var runIDs []string
	if h, ok := v.(delivery.WebhookDeliveryHandled); ok {
		for _, r := range h.Runs {
			runIDs = append(runIDs, r.RunID)
		}
	} else {
		runIDs = []string{e.StreamID}
	}
	for _, id := range runIDs {
		if err := d.cfg.Statuses.Report(ctx, id); err != nil {
			return fmt.Errorf("commit status of run %s: %w", id, err)
		}
	}
	return nil
}
