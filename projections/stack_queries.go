package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/stack"
)

// StackView is a stack as the read model shows it.
type StackView struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Description   string      `json:"description,omitempty"`
	RepositoryURL string      `json:"repository_url"`
	Branch        string      `json:"branch"`
	ProjectRoot   string      `json:"project_root,omitempty"`
	Tool          stack.Tool  `json:"tool"`
	WorkerPoolID  string      `json:"worker_pool_id"`
	RunnerImage   string      `json:"runner_image,omitempty"`
	Autodeploy    bool        `json:"autodeploy"`
	ManagedState  bool        `json:"managed_state"`
	Labels        []string    `json:"labels"`
	Hooks         stack.Hooks `json:"hooks"`
	// VCSIntegrationID is the integration the stack is tied to, "" if none.
	VCSIntegrationID string `json:"vcs_integration_id,omitempty"`
	// Env lists the environment variables by key; secrets without a value.
	Env []EnvVarView `json:"env"`
	// ManualLock is the user lock, nil when none is held.
	ManualLock *ManualLockView `json:"manual_lock,omitempty"`
	// LockHolderRunID is the run holding the run lock, "" when free.
	LockHolderRunID string `json:"lock_holder_run_id,omitempty"`
	// LockedAt is when that run took the run lock.
	LockedAt *time.Time `json:"locked_at,omitempty"`
	// QueuedRunIDs are the runs waiting for the run lock, head first.
	QueuedRunIDs []string  `json:"queued_run_ids"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    string    `json:"created_by"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Version is the version of the stack's event stream the view reflects.
	Version int64 `json:"version"`
}

// ManualLockView is a user's lock on a stack.
type ManualLockView struct {
	Holder   string    `json:"holder"`
	Note     string    `json:"note,omitempty"`
	LockedAt time.Time `json:"locked_at"`
}

// EnvVarView is one environment variable. A secret's value is never
// returned: Value is then empty.
type EnvVarView struct {
	Key    string      `json:"key"`
	Name   string      `json:"name"`
	Scope  stack.Scope `json:"scope"`
	Secret bool        `json:"secret"`
	Value  string      `json:"value,omitempty"`
}

// StackRef names a stack.
type StackRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

const stackColumns = `id, name, description, repository_url, branch, project_root, tool, worker_pool_id, runner_image,
	autodeploy, managed_state, labels, hooks, manual_lock_holder, manual_lock_note, manual_locked_at,
	run_lock_holder, run_locked_at, queue, created_at, created_by, updated_at, version, vcs_integration_id`

func scanStack(row pgx.Row) (StackView, error) {
	var v StackView
	var lockHolder, lockNote string
	var manualAt *time.Time
	err := row.Scan(&v.ID, &v.Name, &v.Description, &v.RepositoryURL, &v.Branch, &v.ProjectRoot, &v.Tool, &v.WorkerPoolID, &v.RunnerImage,
		&v.Autodeploy, &v.ManagedState, &v.Labels, &v.Hooks, &lockHolder, &lockNote, &manualAt,
		&v.LockHolderRunID, &v.LockedAt, &v.QueuedRunIDs, &v.CreatedAt, &v.CreatedBy, &v.UpdatedAt, &v.Version, &v.VCSIntegrationID)
	if err != nil {
		return StackView{}, err
	}
	if lockHolder != "" && manualAt != nil {
		v.ManualLock = &ManualLockView{Holder: lockHolder, Note: lockNote, LockedAt: manualAt.UTC()}
	}
	v.LockedAt = utcPtr(v.LockedAt)
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	v.Env = []EnvVarView{}
	return v, nil
}

// GetStack returns the stack with id or name idOrName (names match
// case-insensitively).
func (q *Queries) GetStack(ctx context.Context, idOrName string) (StackView, error) {
	row := q.pool.QueryRow(ctx, `SELECT `+stackColumns+` FROM rm_stacks
		WHERE id = $1 OR lower(name) = lower($1) ORDER BY id = $1 DESC LIMIT 1`, idOrName)
	v, err := scanStack(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return StackView{}, fmt.Errorf("stack %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return StackView{}, fmt.Errorf("get stack %q: %w", idOrName, err)
	}
	views := []StackView{v}
	if err := q.fillEnv(ctx, views); err != nil {
		return StackView{}, err
	}
	return views[0], nil
}

// ListStacks returns a page of stacks ordered by name (byte order), then id.
func (q *Queries) ListStacks(ctx context.Context, pageToken string, size int) ([]StackView, string, error) {
	size = pageSize(size)
	sql := `SELECT ` + stackColumns + ` FROM rm_stacks ORDER BY name COLLATE "C", id LIMIT $1`
	args := []any{size + 1}
	if pageToken != "" {
		k, err := decodePageToken(pageToken, "stacks", false)
		if err != nil {
			return nil, "", fmt.Errorf("list stacks: %w", err)
		}
		sql = `SELECT ` + stackColumns + ` FROM rm_stacks WHERE (name COLLATE "C", id) > ($2, $3)
			ORDER BY name COLLATE "C", id LIMIT $1`
		args = append(args, k.Name, k.ID)
	}
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list stacks: %w", err)
	}
	views, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StackView, error) { return scanStack(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list stacks: %w", err)
	}
	next := ""
	if len(views) > size {
		views = views[:size]
		last := views[size-1]
		next = encodePageToken(pageKey{List: "stacks", Name: last.Name, ID: last.ID})
	}
	if err := q.fillEnv(ctx, views); err != nil {
		return nil, "", err
	}
	return views, next, nil
}

// fillEnv loads the environment variables of views, in one query.
func (q *Queries) fillEnv(ctx context.Context, views []StackView) error {
	if len(views) == 0 {
		return nil
	}
	ids := make([]string, len(views))
	byID := make(map[string]int, len(views))
	for i, v := range views {
		ids[i] = v.ID
		byID[v.ID] = i
	}
	// coalesce: a secret's value is NULL, and stays unreturned.
	rows, err := q.pool.Query(ctx, `SELECT stack_id, key, name, scope, secret, CASE WHEN secret THEN '' ELSE coalesce(value, '') END
		FROM rm_stack_env WHERE stack_id = ANY($1) ORDER BY stack_id, key COLLATE "C"`, ids)
	if err != nil {
		return fmt.Errorf("environment of stacks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var stackID string
		var e EnvVarView
		if err := rows.Scan(&stackID, &e.Key, &e.Name, &e.Scope, &e.Secret, &e.Value); err != nil {
			return fmt.Errorf("environment of stacks: %w", err)
		}
		i := byID[stackID]
		views[i].Env = append(views[i].Env, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("environment of stacks: %w", err)
	}
	return nil
}

// UsedBy lists the stacks that run on the pool, by name.
func (q *Queries) UsedBy(ctx context.Context, poolID string) ([]StackRef, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, name FROM rm_stacks WHERE worker_pool_id = $1 ORDER BY name COLLATE "C", id`, poolID)
	if err != nil {
		return nil, fmt.Errorf("stacks of pool %s: %w", poolID, err)
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[StackRef])
	if err != nil {
		return nil, fmt.Errorf("stacks of pool %s: %w", poolID, err)
	}
	if refs == nil {
		refs = []StackRef{}
	}
	return refs, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
