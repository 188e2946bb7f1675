package drain

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/services/server/commands"
)

// handleSchedule queues the run of a fired tick.
func (d *Drain) handleSchedule(msg *message.Message) error {
	ctx, e, v, err := d.decode(msg)
	if err != nil {
		d.log.Warn("undecodable schedule event dropped", "err", err)
		return nil
	}
	f, ok := v.(schedule.ScheduleFired)
	if !ok {
		return nil
	}
	err = d.cfg.Commands.QueueScheduledRun(ctx, commands.ScheduledRun{ScheduleID: e.StreamID, Tick: f.Tick, RunID: f.RunID,
		StackID: f.StackID, Kind: f.Kind, TaskCommand: f.TaskCommand})
	if err != nil {
		return fmt.Errorf("schedule %s, tick %s: %w", e.StreamID, f.Tick, err)
	}
	return nil
}
