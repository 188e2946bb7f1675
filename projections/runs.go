package projections

import (
	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
)

// runsProjection maintains rm_runs and rm_run_history from the run events,
// and from the stack events what runs need of their stack (rm_run_stacks):
// its pool and the run holding its run lock.
type runsProjection struct{}

func (runsProjection) Name() string { return RunsName }
func (runsProjection) Tables() []string {
	return []string{"rm_runs", "rm_run_history", "rm_run_stacks"}
}

// Run statements: $1 is the run id, $2 the event's time (updated_at), $3
// the run stream's version.
const (
	runQueuedSQL = `WITH r AS (
		INSERT INTO rm_runs (id, updated_at, version, created_at, history_len, status,
			stack_id, type, commit, task_command, drift, autodeploy, triggered_by, pool_id)
		VALUES ($1, $2, $3, $2, 1, 'QUEUED', $4, $5, $6, $7, $8, $9, $10,
			coalesce((SELECT pool_id FROM rm_run_stacks WHERE stack_id = $4), ''))
		RETURNING id)
		INSERT INTO rm_run_history (run_id, seq, status, at, actor, note) SELECT id, 1, 'QUEUED', $2, $10, '' FROM r`
	// runTransitionSQL moves the run to status $4 and records it in the
	// history with actor $5 and note $6; $7 lets go of the worker.
	runTransitionSQL = `WITH r AS (
		UPDATE rm_runs SET updated_at = $2, version = $3, status = $4, history_len = history_len + 1,
			worker_id = CASE WHEN $7::boolean THEN '' ELSE worker_id END
		WHERE id = $1 RETURNING id, history_len)
		INSERT INTO rm_run_history (run_id, seq, status, at, actor, note) SELECT id, history_len, $4, $2, $5, $6 FROM r`
	runAssignedSQL      = `UPDATE rm_runs SET updated_at = $2, version = $3, worker_id = $4, pool_id = $5 WHERE id = $1`
	runUnassignedSQL    = `UPDATE rm_runs SET updated_at = $2, version = $3, worker_id = '' WHERE id = $1`
	runPhaseFinishedSQL = `UPDATE rm_runs SET updated_at = $2, version = $3,
		has_changes = CASE WHEN $4::text = 'PLANNING' THEN $5::boolean ELSE has_changes END WHERE id = $1`
	runStopRequestedSQL = `UPDATE rm_runs SET updated_at = $2, version = $3, stop_requested_by = $4 WHERE id = $1`
	runVersionSQL       = `UPDATE rm_runs SET version = $2 WHERE id = $1`
)

// Stack statements: $1 is the stack id.
const (
	runStackCreatedSQL = `INSERT INTO rm_run_stacks (stack_id, pool_id) VALUES ($1, $2)`
	// A run that no worker has taken yet follows its stack to a new pool.
	runStackPoolSQL = `WITH s AS (UPDATE rm_run_stacks SET pool_id = $2 WHERE stack_id = $1)
		UPDATE rm_runs SET pool_id = $2
		WHERE stack_id = $1 AND status IN ('QUEUED', 'READY') AND worker_id = '' AND pool_id <> $2`
	runStackDeletedSQL = `DELETE FROM rm_run_stacks WHERE stack_id = $1`
	runLockAcquiredSQL = `UPDATE rm_run_stacks SET lock_holder = $2 WHERE stack_id = $1`
	runLockReleasedSQL = `UPDATE rm_run_stacks SET lock_holder = '' WHERE stack_id = $1 AND lock_holder = $2`
)

func (runsProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	switch e.StreamType {
	case eventstore.StreamRun:
		applyRunEvent(b, e.StreamID, e.Version, data)
	case eventstore.StreamStack:
		applyRunStackEvent(b, e.StreamID, data)
	}
	return nil
}

func applyRunEvent(b *pgx.Batch, id string, v int64, data any) {
	transition := func(to run.Status, at, actor, note any, releaseWorker bool) {
		b.Queue(runTransitionSQL, id, at, v, string(to), actor, note, releaseWorker)
	}
	switch d := data.(type) {
	case run.RunQueued:
		b.Queue(runQueuedSQL, id, d.At, v, d.StackID, string(d.Type), d.Commit, d.TaskCommand, d.Drift, d.Autodeploy, d.Actor)
	case run.RunReady:
		transition(run.Ready, d.At, d.Actor, "", false)
	case run.RunAssigned:
		b.Queue(runAssignedSQL, id, d.At, v, d.WorkerID, d.PoolID)
	case run.RunUnassigned:
		b.Queue(runUnassignedSQL, id, d.At, v)
	case run.RunHandedBack:
		transition(d.To, d.At, d.Actor, d.Note, true)
	case run.RunPhaseStarted:
		transition(d.Phase.Status(), d.At, d.Actor, "", false)
	case run.RunPhaseFinished:
		b.Queue(runPhaseFinishedSQL, id, d.At, v, string(d.Phase), d.HasChanges)
	case run.RunUnconfirmed:
		// The worker saved the workspace and left.
		transition(run.Unconfirmed, d.At, d.Actor, "", true)
	case run.RunConfirmed:
		transition(run.Confirmed, d.At, d.Actor, "", false)
	case run.RunStopRequested:
		b.Queue(runStopRequestedSQL, id, d.At, v, d.Actor)
	case run.RunFinished:
		transition(run.Finished, d.At, d.Actor, "", true)
	case run.RunFailed:
		transition(run.Failed, d.At, d.Actor, d.Note, true)
	case run.RunDiscarded:
		transition(run.Discarded, d.At, d.Actor, d.Note, true)
	case run.RunStopped:
		transition(run.Stopped, d.At, d.Actor, d.Note, true)
	case run.RunCanceled:
		transition(run.Canceled, d.At, d.Actor, d.Note, true)
	case run.RunSkipped:
		transition(run.Skipped, d.At, d.Actor, d.Note, true)
	default:
		// A run event this projection does not show still moves the version.
		b.Queue(runVersionSQL, id, v)
	}
}

func applyRunStackEvent(b *pgx.Batch, stackID string, data any) {
	switch d := data.(type) {
	case stack.StackCreated:
		b.Queue(runStackCreatedSQL, stackID, d.Settings.WorkerPoolID)
	case stack.StackSettingsUpdated:
		b.Queue(runStackPoolSQL, stackID, d.Settings.WorkerPoolID)
	case stack.StackDeleted:
		b.Queue(runStackDeletedSQL, stackID)
	case stack.StackLockAcquired:
		b.Queue(runLockAcquiredSQL, stackID, d.RunID)
	case stack.StackLockReleased:
		b.Queue(runLockReleasedSQL, stackID, d.RunID)
	}
}
