package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/apikey"
)

// APIKeyView is an API key as the read models show it; never its secret.
type APIKeyView struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Role      apikey.Role `json:"role"`
	CreatedAt time.Time   `json:"created_at"`
	CreatedBy string      `json:"created_by"`
	// RevokedAt is when the key was revoked; nil while it is live.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
	// Version is the version of the key's event stream the view reflects.
	Version int64 `json:"version"`
}

const apiKeyColumns = `id, name, role, created_at, created_by, revoked_at, revoked_by, version`

func scanAPIKey(row pgx.Row) (APIKeyView, error) {
	var v APIKeyView
	err := row.Scan(&v.ID, &v.Name, &v.Role, &v.CreatedAt, &v.CreatedBy, &v.RevokedAt, &v.RevokedBy, &v.Version)
	v.CreatedAt, v.RevokedAt = v.CreatedAt.UTC(), utcPtr(v.RevokedAt)
	return v, err
}

// GetAPIKey returns the key with id, revoked or not.
func (q *Queries) GetAPIKey(ctx context.Context, id string) (APIKeyView, error) {
	v, err := scanAPIKey(q.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM rm_api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKeyView{}, fmt.Errorf("API key %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKeyView{}, fmt.Errorf("get API key %q: %w", id, err)
	}
	return v, nil
}

// ListAPIKeys returns a page of the live keys, ordered by name (byte
// order), then id.
func (q *Queries) ListAPIKeys(ctx context.Context, pageToken string, size int) ([]APIKeyView, string, error) {
	size = pageSize(size)
	sql := `SELECT ` + apiKeyColumns + ` FROM rm_api_keys WHERE revoked_at IS NULL ORDER BY name COLLATE "C", id LIMIT $1`
	args := []any{size + 1}
	if pageToken != "" {
		k, err := decodePageToken(pageToken, "apikeys", false)
		if err != nil {
			return nil, "", fmt.Errorf("list API keys: %w", err)
		}
		sql = `SELECT ` + apiKeyColumns + ` FROM rm_api_keys WHERE revoked_at IS NULL AND (name COLLATE "C", id) > ($2, $3)
			ORDER BY name COLLATE "C", id LIMIT $1`
		args = append(args, k.Name, k.ID)
	}
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list API keys: %w", err)
	}
	views, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKeyView, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list API keys: %w", err)
	}
	if views == nil {
		views = []APIKeyView{}
	}
	next := ""
	if len(views) > size {
		views = views[:size]
		last := views[size-1]
		next = encodePageToken(pageKey{List: "apikeys", Name: last.Name, ID: last.ID})
	}
	return views, next, nil
}

// CountLiveAPIKeys returns how many keys with role are not revoked.
func (q *Queries) CountLiveAPIKeys(ctx context.Context, role apikey.Role) (int, error) {
	var n int
	if err := q.pool.QueryRow(ctx, `SELECT count(*) FROM rm_api_keys WHERE revoked_at IS NULL AND role = $1`, string(role)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s API keys: %w", role, err)
	}
	return n, nil
}
