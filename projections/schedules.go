package projections

import (
	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/drift"
	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/eventstore"
)

// schedulesProjection maintains rm_schedules and rm_drift_detections. A
// deleted schedule's row is removed.
type schedulesProjection struct{}

func (schedulesProjection) Name() string { return SchedulesName }
func (schedulesProjection) Tables() []string {
	return []string{"rm_schedules", "rm_drift_detections"}
}

const (
	// since moves only when the cron expression changes, as in the aggregate.
	scheduleSetSQL = `INSERT INTO rm_schedules (id, stack_id, kind, cron, reconcile, task_command, since, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
		ON CONFLICT (id) DO UPDATE SET since = CASE WHEN rm_schedules.cron = excluded.cron THEN rm_schedules.since ELSE excluded.since END,
			cron = excluded.cron, reconcile = excluded.reconcile, task_command = excluded.task_command, updated_at = excluded.updated_at`
	scheduleDeletedSQL = `DELETE FROM rm_schedules WHERE id = $1`
	scheduleFiredSQL   = `UPDATE rm_schedules SET last_tick = $2, last_run_id = $3, last_error = '', updated_at = $4 WHERE id = $1`
	scheduleFailedSQL  = `UPDATE rm_schedules SET last_error = $2, updated_at = $3 WHERE id = $1`
	driftDetectedSQL   = `INSERT INTO rm_drift_detections (run_id, stack_id, commit, resources, reconcile_run_id, at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING`
)

func (schedulesProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	switch d := data.(type) {
	case schedule.ScheduleSet:
		b.Queue(scheduleSetSQL, d.ScheduleID, d.StackID, string(d.Kind), d.Cron, d.Reconcile, d.TaskCommand, d.At)
	case schedule.ScheduleDeleted:
		b.Queue(scheduleDeletedSQL, e.StreamID)
	case schedule.ScheduleFired:
		b.Queue(scheduleFiredSQL, e.StreamID, d.Tick, d.RunID, d.At)
	case schedule.ScheduleRunFailed:
		b.Queue(scheduleFailedSQL, e.StreamID, d.Reason, d.At)
	case drift.DriftDetected:
		b.Queue(driftDetectedSQL, d.RunID, d.StackID, d.Commit, textArray(d.Resources), d.ReconcileRunID, d.At)
	}
	return nil
}
