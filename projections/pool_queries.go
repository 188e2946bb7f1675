package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
)

// PoolView is a worker pool as the read models show it.
type PoolView struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	Labels        []string `json:"labels"`
	DriftRunLimit int      `json:"drift_run_limit"`
	Public        bool     `json:"public"`
	// Generation counts the pool's credentials: 1 at creation, +1 per reset.
	Generation       int             `json:"generation"`
	Certificate      CertificateView `json:"certificate"`
	CycleRequestedAt *time.Time      `json:"cycle_requested_at,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
	CreatedBy        string          `json:"created_by"`
	UpdatedAt        time.Time       `json:"updated_at"`
	// Workers counts the registered workers that are not gone, BusyWorkers
	// those of them processing a run.
	Workers     int `json:"workers"`
	BusyWorkers int `json:"busy_workers"`
	// Version is the version of the pool's event stream the view reflects.
	Version int64 `json:"version"`
}

// CertificateView describes a pool's current certificate.
type CertificateView struct {
	PEM          string                  `json:"pem"`
	Serial       string                  `json:"serial"`
	Fingerprint  string                  `json:"fingerprint"`
	KeyAlgorithm workerpool.KeyAlgorithm `json:"key_algorithm"`
	KeyBits      int                     `json:"key_bits"`
	// NotAfter is when the certificate expires; nil if the PEM does not parse.
	NotAfter *time.Time `json:"not_after,omitempty"`
}

// WorkerView is a live worker (neither lost nor exited).
type WorkerView struct {
	ID           string            `json:"id"`
	PoolID       string            `json:"pool_id"`
	Status       worker.Status     `json:"status"`
	Drained      bool              `json:"drained"`
	RunID        string            `json:"run_id,omitempty"`
	Metadata     map[string]string `json:"metadata"`
	RegisteredAt time.Time         `json:"registered_at"`
	// LauncherVersion is the version the worker's launcher reported, ""
	// if none.
	LauncherVersion string `json:"launcher_version,omitempty"`
	Version         int64  `json:"version"`
}

// QueueEntry is one run of a pool's queue.
type QueueEntry struct {
	RunID     string     `json:"run_id"`
	StackID   string     `json:"stack_id"`
	StackName string     `json:"stack_name,omitempty"`
	Type      run.Type   `json:"type"`
	Status    run.Status `json:"status"`
	Drift     bool       `json:"drift"`
	// WorkerID is the worker processing the run, "" while it waits.
	WorkerID string `json:"worker_id,omitempty"`
	// InProgress says a worker holds the run; otherwise it can be scheduled.
	InProgress bool      `json:"in_progress"`
	CreatedAt  time.Time `json:"created_at"`
}

const poolColumns = `p.id, p.name, p.description, p.labels, p.drift_run_limit, p.public, p.generation,
	p.cert_pem, p.cert_serial, p.cert_fingerprint, p.cert_key_algorithm, p.cert_key_bits, p.cert_not_after,
	p.cycle_requested_at, p.created_at, p.created_by, p.updated_at, p.version,
	(SELECT count(*) FROM rm_workers w WHERE w.pool_id = p.id AND w.gone = ''),
	(SELECT count(*) FROM rm_workers w WHERE w.pool_id = p.id AND w.gone = '' AND w.run_id <> '')`

func scanPool(row pgx.Row) (PoolView, error) {
	var v PoolView
	c := &v.Certificate
	err := row.Scan(&v.ID, &v.Name, &v.Description, &v.Labels, &v.DriftRunLimit, &v.Public, &v.Generation,
		&c.PEM, &c.Serial, &c.Fingerprint, &c.KeyAlgorithm, &c.KeyBits, &c.NotAfter,
		&v.CycleRequestedAt, &v.CreatedAt, &v.CreatedBy, &v.UpdatedAt, &v.Version, &v.Workers, &v.BusyWorkers)
	c.NotAfter, v.CycleRequestedAt = utcPtr(c.NotAfter), utcPtr(v.CycleRequestedAt)
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return v, err
}

// GetPool returns the pool with id or name idOrName (names match
// case-insensitively). Deleted pools are not found.
func (q *Queries) GetPool(ctx context.Context, idOrName string) (PoolView, error) {
	row := q.pool.QueryRow(ctx, `SELECT `+poolColumns+` FROM rm_worker_pools p
		WHERE NOT p.deleted AND (p.id = $1 OR lower(p.name) = lower($1)) ORDER BY p.id = $1 DESC LIMIT 1`, idOrName)
	v, err := scanPool(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return PoolView{}, fmt.Errorf("worker pool %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return PoolView{}, fmt.Errorf("get worker pool %q: %w", idOrName, err)
	}
	return v, nil
}

// ListPools returns a page of the pools that are not deleted, ordered by
// name (byte order), then id.
func (q *Queries) ListPools(ctx context.Context, pageToken string, size int) ([]PoolView, string, error) {
	size = pageSize(size)
	sql := `SELECT ` + poolColumns + ` FROM rm_worker_pools p WHERE NOT p.deleted ORDER BY p.name COLLATE "C", p.id LIMIT $1`
	args := []any{size + 1}
	if pageToken != "" {
		k, err := decodePageToken(pageToken, "pools", false)
		if err != nil {
			return nil, "", fmt.Errorf("list worker pools: %w", err)
		}
		sql = `SELECT ` + poolColumns + ` FROM rm_worker_pools p WHERE NOT p.deleted AND (p.name COLLATE "C", p.id) > ($2, $3)
			ORDER BY p.name COLLATE "C", p.id LIMIT $1`
		args = append(args, k.Name, k.ID)
	}
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list worker pools: %w", err)
	}
	views, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PoolView, error) { return scanPool(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list worker pools: %w", err)
	}
	if views == nil {
		views = []PoolView{}
	}
	next := ""
	if len(views) > size {
		views = views[:size]
		last := views[size-1]
		next = encodePageToken(pageKey{List: "pools", Name: last.Name, ID: last.ID})
	}
	return views, next, nil
}

// ListWorkers lists the pool's live workers (lost and exited ones are
// left out), oldest registration first.
func (q *Queries) ListWorkers(ctx context.Context, poolID string) ([]WorkerView, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, pool_id, status, drained, run_id, metadata, registered_at, launcher_version, version
		FROM rm_workers WHERE pool_id = $1 AND gone = '' ORDER BY registered_at, id`, poolID)
	if err != nil {
		return nil, fmt.Errorf("workers of pool %s: %w", poolID, err)
	}
	views, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorkerView, error) {
		var v WorkerView
		err := r.Scan(&v.ID, &v.PoolID, &v.Status, &v.Drained, &v.RunID, &v.Metadata, &v.RegisteredAt, &v.LauncherVersion, &v.Version)
		v.RegisteredAt = v.RegisteredAt.UTC()
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("workers of pool %s: %w", poolID, err)
	}
	if views == nil {
		views = []WorkerView{}
	}
	return views, nil
}

// PoolQueue lists the pool's runs in progress (a worker holds them), then
// the runs it can schedule: READY ones, CONFIRMED ones waiting for a worker
// to apply, and QUEUED ones that already hold their stack's run lock. In
// progress runs come oldest first; the others by scheduling priority
// (tracked runs and tasks, then proposed runs, then drift detection), then
// oldest first.
func (q *Queries) PoolQueue(ctx context.Context, poolID string) ([]QueueEntry, error) {
	// The status filter repeats the partial index's predicate so that the
	// planner uses it.
	rows, err := q.pool.Query(ctx, `SELECT r.id, r.stack_id, coalesce(s.name, ''), r.type, r.status, r.drift, r.worker_id, r.in_progress, r.created_at
		FROM (SELECT *, (worker_id <> '' OR status IN ('PREPARING', 'INITIALIZING', 'PLANNING', 'PREPARING_APPLY', 'APPLYING', 'DESTROYING', 'PERFORMING')) AS in_progress
			FROM rm_runs
			WHERE pool_id = $1
				AND status NOT IN ('UNCONFIRMED', 'FINISHED', 'FAILED', 'DISCARDED', 'STOPPED', 'CANCELED', 'SKIPPED')) r
		LEFT JOIN rm_run_stacks rs ON rs.stack_id = r.stack_id
		LEFT JOIN rm_stacks s ON s.id = r.stack_id
		WHERE r.in_progress OR r.status IN ('READY', 'CONFIRMED') OR (r.status = 'QUEUED' AND rs.lock_holder = r.id)
		ORDER BY r.in_progress DESC,
			CASE WHEN r.in_progress OR r.type <> 'PROPOSED' THEN 0 WHEN NOT r.drift THEN 1 ELSE 2 END,
			r.created_at, r.id`, poolID)
	if err != nil {
		return nil, fmt.Errorf("queue of pool %s: %w", poolID, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QueueEntry, error) {
		var e QueueEntry
		err := r.Scan(&e.RunID, &e.StackID, &e.StackName, &e.Type, &e.Status, &e.Drift, &e.WorkerID, &e.InProgress, &e.CreatedAt)
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("queue of pool %s: %w", poolID, err)
	}
	if entries == nil {
		entries = []QueueEntry{}
	}
	return entries, nil
}
