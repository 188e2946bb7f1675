package projections

import (
	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/eventstore"
)

// apiKeysProjection maintains rm_api_keys from the API key events. A revoked
// key keeps its row, with the time and actor of the revocation. The
// secret's hash is not copied.
type apiKeysProjection struct{}

func (apiKeysProjection) Name() string     { return APIKeysName }
func (apiKeysProjection) Tables() []string { return []string{"rm_api_keys"} }

// $1 is the key id, $2 the key stream's version.
const (
	apiKeyCreatedSQL = `INSERT INTO rm_api_keys (id, version, name, role, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)`
	apiKeyRevokedSQL = `UPDATE rm_api_keys SET version = $2, revoked_at = $3, revoked_by = $4 WHERE id = $1`
	apiKeyVersionSQL = `UPDATE rm_api_keys SET version = $2 WHERE id = $1`
)

func (apiKeysProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	if e.StreamType != eventstore.StreamAPIKey {
		return nil
	}
	id, v := e.StreamID, e.Version
	switch d := data.(type) {
	case apikey.APIKeyCreated:
		b.Queue(apiKeyCreatedSQL, id, v, d.Name, string(d.Role), d.At, d.Actor)
	case apikey.APIKeyRevoked:
		b.Queue(apiKeyRevokedSQL, id, v, d.At, d.Actor)
	default:
		b.Queue(apiKeyVersionSQL, id, v)
	}
	return nil
}
