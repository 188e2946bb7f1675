package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// VCSIntegrationView is an integration as the read model shows it: no secret.
type VCSIntegrationView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	APIURL    string    `json:"api_url"`
	HasToken  bool      `json:"has_token"`
	HasSSHKey bool      `json:"has_ssh_key"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// ListVCSIntegrations lists every integration by name.
func (q *Queries) ListVCSIntegrations(ctx context.Context) ([]VCSIntegrationView, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, name, provider, api_url, has_token, has_ssh_key, created_at, created_by
		FROM rm_vcs_integrations ORDER BY lower(name), id`)
	if err != nil {
		return nil, fmt.Errorf("list vcs integrations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (VCSIntegrationView, error) {
		var v VCSIntegrationView
		err := r.Scan(&v.ID, &v.Name, &v.Provider, &v.APIURL, &v.HasToken, &v.HasSSHKey, &v.CreatedAt, &v.CreatedBy)
		return v, err
	})
}

// DeliveryView is a webhook delivery as the read model shows it.
type DeliveryView struct {
	ID            string    `json:"id"`
	IntegrationID string    `json:"integration_id"`
	Provider      string    `json:"provider"`
	Event         string    `json:"event"`
	ExternalID    string    `json:"external_id"`
	Status        string    `json:"status"`
	Reason        string    `json:"reason,omitempty"`
	RunIDs        []string  `json:"run_ids"`
	Attempts      int       `json:"attempts"`
	ReceivedAt    time.Time `json:"received_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// ListDeliveries lists the newest deliveries, at most limit (default 50,
// at most MaxPageSize), of status when it is not "".
func (q *Queries) ListDeliveries(ctx context.Context, status string, limit int) ([]DeliveryView, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, integration_id, provider, event, external_id, status, reason, run_ids, attempts, received_at, updated_at
		FROM rm_vcs_deliveries WHERE $1 = '' OR status = $1 ORDER BY received_at DESC, id DESC LIMIT $2`, status, pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryView, error) {
		var v DeliveryView
		err := r.Scan(&v.ID, &v.IntegrationID, &v.Provider, &v.Event, &v.ExternalID, &v.Status, &v.Reason, &v.RunIDs, &v.Attempts, &v.ReceivedAt, &v.UpdatedAt)
		return v, err
	})
}

// GetDelivery returns one delivery; ErrNotFound when the read model has none.
func (q *Queries) GetDelivery(ctx context.Context, id string) (DeliveryView, error) {
	var v DeliveryView
	err := q.pool.QueryRow(ctx, `SELECT id, integration_id, provider, event, external_id, status, reason, run_ids, attempts, received_at, updated_at
		FROM rm_vcs_deliveries WHERE id = $1`, id).
		Scan(&v.ID, &v.IntegrationID, &v.Provider, &v.Event, &v.ExternalID, &v.Status, &v.Reason, &v.RunIDs, &v.Attempts, &v.ReceivedAt, &v.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	return v, err
}

// TrackedStack is what the drain needs of a stack tied to an integration.
type TrackedStack struct {
	ID            string
	RepositoryURL string
	Branch        string
	ProjectRoot   string
}

// StacksOfIntegration lists the stacks tied to an integration.
func (q *Queries) StacksOfIntegration(ctx context.Context, integrationID string) ([]TrackedStack, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, repository_url, branch, project_root FROM rm_stacks WHERE vcs_integration_id = $1 ORDER BY id`, integrationID)
	if err != nil {
		return nil, fmt.Errorf("stacks of integration %s: %w", integrationID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TrackedStack, error) {
		var s TrackedStack
		err := r.Scan(&s.ID, &s.RepositoryURL, &s.Branch, &s.ProjectRoot)
		return s, err
	})
}

// ScheduleView is a cron schedule as the read model shows it.
type ScheduleView struct {
	ID          string     `json:"id"`
	StackID     string     `json:"stack_id"`
	Kind        string     `json:"kind"`
	Cron        string     `json:"cron"`
	Reconcile   bool       `json:"reconcile"`
	TaskCommand string     `json:"task_command,omitempty"`
	Since       time.Time  `json:"since"`
	LastTick    *time.Time `json:"last_tick,omitempty"`
	LastRunID   string     `json:"last_run_id,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// ListSchedules lists the schedules of a stack, or every schedule when
// stackID is "".
func (q *Queries) ListSchedules(ctx context.Context, stackID string) ([]ScheduleView, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, stack_id, kind, cron, reconcile, task_command, since, last_tick, last_run_id, last_error
		FROM rm_schedules WHERE $1 = '' OR stack_id = $1 ORDER BY stack_id, id`, stackID)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScheduleView, error) {
		var v ScheduleView
		err := r.Scan(&v.ID, &v.StackID, &v.Kind, &v.Cron, &v.Reconcile, &v.TaskCommand, &v.Since, &v.LastTick, &v.LastRunID, &v.LastError)
		return v, err
	})
}

// DriftView is one detection of drift.
type DriftView struct {
	RunID          string    `json:"run_id"`
	StackID        string    `json:"stack_id"`
	Commit         string    `json:"commit"`
	Resources      []string  `json:"resources"`
	ReconcileRunID string    `json:"reconcile_run_id,omitempty"`
	At             time.Time `json:"at"`
}

// DriftDetections lists the newest detections of a stack, at most limit.
func (q *Queries) DriftDetections(ctx context.Context, stackID string, limit int) ([]DriftView, error) {
	rows, err := q.pool.Query(ctx, `SELECT run_id, stack_id, commit, resources, reconcile_run_id, at
		FROM rm_drift_detections WHERE stack_id = $1 ORDER BY at DESC, run_id DESC LIMIT $2`, stackID, pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("drift detections of %s: %w", stackID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DriftView, error) {
		var v DriftView
		err := r.Scan(&v.RunID, &v.StackID, &v.Commit, &v.Resources, &v.ReconcileRunID, &v.At)
		return v, err
	})
}
