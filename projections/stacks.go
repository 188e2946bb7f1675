package projections

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
)

// stacksProjection maintains rm_stacks, rm_stack_env and rm_stack_files
// from the stack events. A deleted stack's rows are removed.
type stacksProjection struct{}

func (stacksProjection) Name() string { return StacksName }
func (stacksProjection) Tables() []string {
	return []string{"rm_stacks", "rm_stack_env", "rm_stack_files"}
}

// Every statement sets updated_at ($2) and version ($3) besides its change;
// $1 is the stack id.
const (
	stackCreatedSQL = `INSERT INTO rm_stacks (id, updated_at, version, created_at, created_by, managed_state,
		name, description, repository_url, branch, project_root, tool, worker_pool_id, runner_image, autodeploy, labels, hooks,
		vcs_integration_id)
		VALUES ($1, $2, $3, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`
	stackSettingsSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		name = $4, description = $5, repository_url = $6, branch = $7, project_root = $8, tool = $9,
		worker_pool_id = $10, runner_image = $11, autodeploy = $12, labels = $13, hooks = $14,
		vcs_integration_id = $15 WHERE id = $1`
	stackDeletedSQL = `WITH env AS (DELETE FROM rm_stack_env WHERE stack_id = $1),
		files AS (DELETE FROM rm_stack_files WHERE stack_id = $1)
		DELETE FROM rm_stacks WHERE id = $1`
	stackVersionSQL = `UPDATE rm_stacks SET version = $2 WHERE id = $1`
	stackEnvSetSQL  = `WITH s AS (UPDATE rm_stacks SET updated_at = $2, version = $3 WHERE id = $1)
		INSERT INTO rm_stack_env (stack_id, updated_at, key, name, scope, secret, value) VALUES ($1, $2, $4, $5, $6, $7, $8)
		ON CONFLICT (stack_id, key) DO UPDATE SET updated_at = excluded.updated_at, name = excluded.name,
			scope = excluded.scope, secret = excluded.secret, value = excluded.value`
	stackEnvDeletedSQL = `WITH s AS (UPDATE rm_stacks SET updated_at = $2, version = $3 WHERE id = $1)
		DELETE FROM rm_stack_env WHERE stack_id = $1 AND key = $4`
	stackFileMountedSQL = `WITH s AS (UPDATE rm_stacks SET updated_at = $2, version = $3 WHERE id = $1)
		INSERT INTO rm_stack_files (stack_id, updated_at, path, size) VALUES ($1, $2, $4, $5)
		ON CONFLICT (stack_id, path) DO UPDATE SET updated_at = excluded.updated_at, size = excluded.size`
	stackFileUnmountedSQL = `WITH s AS (UPDATE rm_stacks SET updated_at = $2, version = $3 WHERE id = $1)
		DELETE FROM rm_stack_files WHERE stack_id = $1 AND path = $4`
	stackLockedSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		manual_lock_holder = $4, manual_lock_note = $5, manual_locked_at = $2 WHERE id = $1`
	stackUnlockedSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		manual_lock_holder = '', manual_lock_note = '', manual_locked_at = NULL WHERE id = $1`
	stackRunEnqueuedSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		queue = array_append(queue, $4::text) WHERE id = $1`
	stackLockAcquiredSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		run_lock_holder = $4, run_locked_at = $2, queue = array_remove(queue, $4::text) WHERE id = $1`
	stackLockReleasedSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		run_lock_holder = CASE WHEN run_lock_holder = $4 THEN '' ELSE run_lock_holder END,
		run_locked_at = CASE WHEN run_lock_holder = $4 THEN NULL ELSE run_locked_at END WHERE id = $1`
	stackRunDequeuedSQL = `UPDATE rm_stacks SET updated_at = $2, version = $3,
		queue = array_remove(queue, $4::text) WHERE id = $1`
)

func (stacksProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	if e.StreamType != eventstore.StreamStack {
		return nil
	}
	id, v := e.StreamID, e.Version
	switch d := data.(type) {
	case stack.StackCreated:
		s := d.Settings
		hooks, err := hooksJSON(s.Hooks)
		if err != nil {
			return err
		}
		b.Queue(stackCreatedSQL, id, d.At, v, d.Actor, d.ManagedState,
			s.Name, s.Description, s.RepositoryURL, s.Branch, s.ProjectRoot, string(s.Tool), s.WorkerPoolID, s.RunnerImage, s.Autodeploy, textArray(s.Labels), hooks,
			s.VCSIntegrationID)
	case stack.StackSettingsUpdated:
		s := d.Settings
		hooks, err := hooksJSON(s.Hooks)
		if err != nil {
			return err
		}
		b.Queue(stackSettingsSQL, id, d.At, v,
			s.Name, s.Description, s.RepositoryURL, s.Branch, s.ProjectRoot, string(s.Tool), s.WorkerPoolID, s.RunnerImage, s.Autodeploy, textArray(s.Labels), hooks,
			s.VCSIntegrationID)
	case stack.StackDeleted:
		b.Queue(stackDeletedSQL, id)
	case stack.StackEnvSet:
		// A secret's ciphertext stays in the event store: the read model
		// only knows that the variable is secret.
		var value *string
		if !d.Secret {
			value = &d.Value
		}
		b.Queue(stackEnvSetSQL, id, d.At, v, d.Key, d.Name, string(d.Scope), d.Secret, value)
	case stack.StackEnvDeleted:
		b.Queue(stackEnvDeletedSQL, id, d.At, v, d.Key)
	case stack.StackFileMounted:
		// The ciphertext stays in the event store.
		b.Queue(stackFileMountedSQL, id, d.At, v, d.Path, d.Size)
	case stack.StackFileUnmounted:
		b.Queue(stackFileUnmountedSQL, id, d.At, v, d.Path)
	case stack.StackLocked:
		b.Queue(stackLockedSQL, id, d.At, v, d.Actor, d.Note)
	case stack.StackUnlocked:
		b.Queue(stackUnlockedSQL, id, d.At, v)
	case stack.StackRunEnqueued:
		b.Queue(stackRunEnqueuedSQL, id, d.At, v, d.RunID)
	case stack.StackLockAcquired:
		b.Queue(stackLockAcquiredSQL, id, d.At, v, d.RunID)
	case stack.StackLockReleased:
		b.Queue(stackLockReleasedSQL, id, d.At, v, d.RunID)
	case stack.StackRunDequeued:
		b.Queue(stackRunDequeuedSQL, id, d.At, v, d.RunID)
	default:
		// A stack event this projection does not show still moves the version.
		b.Queue(stackVersionSQL, id, v)
	}
	return nil
}

func hooksJSON(h stack.Hooks) (string, error) {
	data, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode hooks: %w", err)
	}
	return string(data), nil
}

// textArray returns s, or an empty array for nil: pgx sends a nil slice as
// NULL, and the array columns are NOT NULL.
func textArray(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
