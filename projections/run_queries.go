package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/run"
)

// RunView is a run as the read model shows it.
type RunView struct {
	ID          string     `json:"id"`
	StackID     string     `json:"stack_id"`
	Type        run.Type   `json:"type"`
	Status      run.Status `json:"status"`
	Commit      string     `json:"commit"`
	TaskCommand string     `json:"task_command,omitempty"`
	Drift       bool       `json:"drift"`
	Autodeploy  bool       `json:"autodeploy"`
	TriggeredBy string     `json:"triggered_by"`
	// WorkerID is the worker holding the run, "" when none does.
	WorkerID string `json:"worker_id,omitempty"`
	// PoolID is the pool the run belongs to: its stack's while it waits,
	// then that of the worker that took it.
	PoolID string `json:"pool_id"`
	// HoldsLock says the run holds its stack's run lock.
	HoldsLock       bool      `json:"holds_lock"`
	StopRequestedBy string    `json:"stop_requested_by,omitempty"`
	HasChanges      bool      `json:"has_changes"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	// StopNote is the note given with the stop request.
	StopNote string `json:"stop_note,omitempty"`
	// Plan summarizes the last plan; nil when no worker reported one.
	Plan *run.PlanSummary `json:"plan,omitempty"`
	// Version is the version of the run's event stream the view reflects.
	Version int64 `json:"version"`
	// History lists the status changes, oldest first (GetRun only).
	History []RunHistoryEntry `json:"history,omitempty"`
	// Destroy: a TRACKED run that destroys the stack's resources.
	Destroy bool `json:"destroy,omitempty"`
	// RetryOf is the run this one retries, "" when it is not a retry.
	RetryOf string `json:"retry_of,omitempty"`
	// Outputs are the outputs recorded after the run's apply or task,
	// sorted by name; none before (GetRun only).
	Outputs []RunOutput `json:"outputs,omitempty"`
}

// RunOutput is one of a run's outputs. A sensitive one has no value here:
// Sealed says whether the server keeps it (sealed to its outputs key, in
// the run's events).
type RunOutput struct {
	Name      string          `json:"name"`
	Sensitive bool            `json:"sensitive,omitempty"`
	Type      json.RawMessage `json:"type,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Sealed    bool            `json:"sealed,omitempty"`
}

// StopRequested reports whether someone asked the run to stop.
func (v RunView) StopRequested() bool { return v.StopRequestedBy != "" }

// RunHistoryEntry is one status change of a run.
type RunHistoryEntry struct {
	Seq    int        `json:"seq"`
	Status run.Status `json:"status"`
	At     time.Time  `json:"at"`
	Actor  string     `json:"actor"`
	Note   string     `json:"note,omitempty"`
	// WorkerID is the worker that held the run when it entered the status
	// (the one running the phase, for a phase's status); "" when none did.
	WorkerID string `json:"worker_id,omitempty"`
}

// runColumns are read from rm_runs r joined with rm_run_stacks s.
const runColumns = `r.id, r.stack_id, r.type, r.status, r.commit, r.task_command, r.drift, r.autodeploy, r.triggered_by,
	r.worker_id, r.pool_id, coalesce(s.lock_holder = r.id, false), r.stop_requested_by, r.has_changes, r.created_at, r.updated_at, r.version,
	r.destroy, r.retry_of, r.stop_note, r.plan_add, r.plan_change, r.plan_destroy`
const runsFrom = ` FROM rm_runs r LEFT JOIN rm_run_stacks s ON s.stack_id = r.stack_id `

// scanRun scans runColumns, then into more (GetRun's further columns).
func scanRun(row pgx.Row, more ...any) (RunView, error) {
	var v RunView
	var add, change, destroy *int
	err := row.Scan(append([]any{&v.ID, &v.StackID, &v.Type, &v.Status, &v.Commit, &v.TaskCommand, &v.Drift, &v.Autodeploy, &v.TriggeredBy,
		&v.WorkerID, &v.PoolID, &v.HoldsLock, &v.StopRequestedBy, &v.HasChanges, &v.CreatedAt, &v.UpdatedAt, &v.Version,
		&v.Destroy, &v.RetryOf, &v.StopNote, &add, &change, &destroy}, more...)...)
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	if add != nil && change != nil && destroy != nil {
		v.Plan = &run.PlanSummary{Add: *add, Change: *change, Destroy: *destroy}
	}
	return v, err
}

// GetRun returns the run with its history.
func (q *Queries) GetRun(ctx context.Context, id string) (RunView, error) {
	// One round trip; both reads see one snapshot, so the history matches
	// the run.
	b := &pgx.Batch{}
	b.Queue(`SELECT `+runColumns+`, r.outputs`+runsFrom+`WHERE r.id = $1`, id)
	b.Queue(`SELECT seq, status, at, actor, note, worker_id FROM rm_run_history WHERE run_id = $1 ORDER BY seq`, id)
	var v RunView
	err := pgx.BeginTxFunc(ctx, q.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		var outputs []RunOutput
		var err error
		if v, err = scanRun(br.QueryRow(), &outputs); err != nil {
			return err
		}
		if len(outputs) > 0 {
			v.Outputs = outputs
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		v.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunHistoryEntry, error) {
			var h RunHistoryEntry
			err := r.Scan(&h.Seq, &h.Status, &h.At, &h.Actor, &h.Note, &h.WorkerID)
			h.At = h.At.UTC()
			return h, err
		})
		if err != nil {
			return err
		}
		return br.Close()
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return RunView{}, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return RunView{}, fmt.Errorf("get run %q: %w", id, err)
	}
	return v, nil
}

// ListRuns returns a page of the stack's runs, newest first (without
// their history).
func (q *Queries) ListRuns(ctx context.Context, stackID, pageToken string, size int) ([]RunView, string, error) {
	size = pageSize(size)
	list := "runs:" + stackID
	sql := `SELECT ` + runColumns + runsFrom + `WHERE r.stack_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT $2`
	args := []any{stackID, size + 1}
	if pageToken != "" {
		k, err := decodePageToken(pageToken, list, true)
		if err != nil {
			return nil, "", fmt.Errorf("list runs of stack %s: %w", stackID, err)
		}
		sql = `SELECT ` + runColumns + runsFrom + `WHERE r.stack_id = $1 AND (r.created_at, r.id) < ($3, $4)
			ORDER BY r.created_at DESC, r.id DESC LIMIT $2`
		args = append(args, *k.Time, k.ID)
	}
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list runs of stack %s: %w", stackID, err)
	}
	views, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunView, error) { return scanRun(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list runs of stack %s: %w", stackID, err)
	}
	if views == nil {
		views = []RunView{}
	}
	next := ""
	if len(views) > size {
		views = views[:size]
		last := views[size-1]
		next = encodePageToken(pageKey{List: list, Time: &last.CreatedAt, ID: last.ID})
	}
	return views, next, nil
}
