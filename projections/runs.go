package projections

import (
	"encoding/json"
	"fmt"

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
			stack_id, type, commit, task_command, drift, autodeploy, triggered_by, pool_id, destroy, retry_of)
		VALUES ($1, $2, $3, $2, 1, 'QUEUED', $4, $5, $6, $7, $8, $9, $10,
			coalesce((SELECT pool_id FROM rm_run_stacks WHERE stack_id = $4), ''), $11, $12)
		RETURNING id)
		INSERT INTO rm_run_history (run_id, seq, status, at, actor, note) SELECT id, 1, 'QUEUED', $2, $10, '' FROM r`
	// runTransitionSQL moves the run to status $4 and records it in the
	// history with actor $5 and note $6; $7 lets go of the worker. The
	// entry names the worker holding the run: the one the event names ($8,
	// when it lets go of it), else the one still assigned.
	runTransitionSQL = `WITH r AS (
		UPDATE rm_runs SET updated_at = $2, version = $3, status = $4, history_len = history_len + 1,
			worker_id = CASE WHEN $7::boolean THEN '' ELSE worker_id END
		WHERE id = $1 RETURNING id, history_len, worker_id)
		INSERT INTO rm_run_history (run_id, seq, status, at, actor, note, worker_id)
		SELECT id, history_len, $4, $2, $5, $6, coalesce(nullif($8::text, ''), worker_id) FROM r`
	runAssignedSQL   = `UPDATE rm_runs SET updated_at = $2, version = $3, worker_id = $4, pool_id = $5 WHERE id = $1`
	runUnassignedSQL = `UPDATE rm_runs SET updated_at = $2, version = $3, worker_id = '' WHERE id = $1`
	// runPhaseFinishedSQL: the end of PLANNING sets whether the plan has
	// changes and its summary ($6-$8, NULL when the worker sent none).
	runPhaseFinishedSQL = `UPDATE rm_runs SET updated_at = $2, version = $3,
		has_changes = CASE WHEN $4::text = 'PLANNING' THEN $5::boolean ELSE has_changes END,
		plan_add = CASE WHEN $4::text = 'PLANNING' THEN $6::integer ELSE plan_add END,
		plan_change = CASE WHEN $4::text = 'PLANNING' THEN $7::integer ELSE plan_change END,
		plan_destroy = CASE WHEN $4::text = 'PLANNING' THEN $8::integer ELSE plan_destroy END
		WHERE id = $1`
	runStopRequestedSQL = `UPDATE rm_runs SET updated_at = $2, version = $3, stop_requested_by = $4, stop_note = $5 WHERE id = $1`
	runOutputsSQL       = `UPDATE rm_runs SET updated_at = $2, version = $3, outputs = $4::jsonb WHERE id = $1`
	runVersionSQL       = `UPDATE rm_runs SET version = $2 WHERE id = $1`
	// A replanned run plans again on its stack's pool, like a new run.
	runReplanPoolSQL = `UPDATE rm_runs SET pool_id = coalesce((SELECT pool_id FROM rm_run_stacks WHERE stack_id = rm_runs.stack_id), pool_id)
		WHERE id = $1`
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
		return applyRunEvent(b, e.StreamID, e.Version, data)
	case eventstore.StreamStack:
		applyRunStackEvent(b, e.StreamID, data)
	}
	return nil
}

func applyRunEvent(b *pgx.Batch, id string, v int64, data any) error {
	// worker is the worker the event lets go of, "" when it keeps it.
	transition := func(to run.Status, at, actor, note any, releaseWorker bool, worker string) {
		b.Queue(runTransitionSQL, id, at, v, string(to), actor, note, releaseWorker, worker)
	}
	switch d := data.(type) {
	case run.RunQueued:
		b.Queue(runQueuedSQL, id, d.At, v, d.StackID, string(d.Type), d.Commit, d.TaskCommand, d.Drift, d.Autodeploy, d.Actor,
			d.Destroy, d.RetryOf)
	case run.RunReady:
		transition(run.Ready, d.At, d.Actor, "", false, "")
	case run.RunAssigned:
		b.Queue(runAssignedSQL, id, d.At, v, d.WorkerID, d.PoolID)
	case run.RunUnassigned:
		b.Queue(runUnassignedSQL, id, d.At, v)
	case run.RunHandedBack:
		transition(d.To, d.At, d.Actor, d.Note, true, d.WorkerID)
	case run.RunPhaseStarted:
		transition(d.Phase.Status(), d.At, d.Actor, "", false, "")
	case run.RunPhaseFinished:
		var add, change, destroy *int
		if d.Plan != nil {
			add, change, destroy = &d.Plan.Add, &d.Plan.Change, &d.Plan.Destroy
		}
		b.Queue(runPhaseFinishedSQL, id, d.At, v, string(d.Phase), d.HasChanges, add, change, destroy)
	case run.RunUnconfirmed:
		// The worker saved the workspace and left.
		transition(run.Unconfirmed, d.At, d.Actor, "", true, d.WorkerID)
	case run.RunConfirmed:
		transition(run.Confirmed, d.At, d.Actor, "", false, "")
	case run.RunReplanRequested:
		transition(run.ReplanRequested, d.At, d.Actor, "", false, "")
		b.Queue(runReplanPoolSQL, id)
	case run.RunStopRequested:
		b.Queue(runStopRequestedSQL, id, d.At, v, d.Actor, d.Note)
	case run.RunOutputsRecorded:
		outputs, err := outputsJSON(d.Outputs)
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		b.Queue(runOutputsSQL, id, d.At, v, outputs)
	case run.RunFinished:
		transition(run.Finished, d.At, d.Actor, "", true, d.WorkerID)
	case run.RunFailed:
		transition(run.Failed, d.At, d.Actor, d.Note, true, d.WorkerID)
	case run.RunDiscarded:
		transition(run.Discarded, d.At, d.Actor, d.Note, true, d.WorkerID)
	case run.RunStopped:
		transition(run.Stopped, d.At, d.Actor, d.Note, true, d.WorkerID)
	case run.RunCanceled:
		transition(run.Canceled, d.At, d.Actor, d.Note, true, d.WorkerID)
	case run.RunSkipped:
		transition(run.Skipped, d.At, d.Actor, d.Note, true, d.WorkerID)
	default:
		// A run event this projection does not show still moves the version.
		b.Queue(runVersionSQL, id, v)
	}
	return nil
}

// outputsJSON is a run's outputs as rm_runs keeps them (RunOutput): the
// sealed values stay in the event.
func outputsJSON(outputs []run.Output) (string, error) {
	views := make([]RunOutput, len(outputs))
	for i, o := range outputs {
		views[i] = RunOutput{Name: o.Name, Sensitive: o.Sensitive, Type: o.Type, Value: o.Value, Sealed: len(o.Sealed) > 0}
	}
	data, err := json.Marshal(views)
	if err != nil {
		return "", fmt.Errorf("encode the outputs: %w", err)
	}
	return string(data), nil
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
