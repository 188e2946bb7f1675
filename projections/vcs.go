package projections

import (
	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/eventstore"
)

// vcsProjection maintains rm_vcs_integrations and rm_vcs_deliveries. No
// secret and no payload is copied.
type vcsProjection struct{}

func (vcsProjection) Name() string     { return VCSName }
func (vcsProjection) Tables() []string { return []string{"rm_vcs_integrations", "rm_vcs_deliveries"} }

const (
	vcsAddedSQL = `INSERT INTO rm_vcs_integrations (id, name, provider, api_url, has_token, has_ssh_key, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	deliveryReceivedSQL = `INSERT INTO rm_vcs_deliveries (id, integration_id, provider, event, external_id, status, attempts, received_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'PENDING', 1, $6, $6)`
	// $1 delivery id, $2 time, $3 status, $4 reason, $5 runs or NULL to keep them.
	deliveryStatusSQL = `UPDATE rm_vcs_deliveries SET updated_at = $2, status = $3, reason = $4,
		run_ids = coalesce($5, run_ids) WHERE id = $1`
	deliveryReplaySQL = `UPDATE rm_vcs_deliveries SET updated_at = $2, status = 'PENDING', reason = '', attempts = attempts + 1 WHERE id = $1`
)

func (vcsProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	switch d := data.(type) {
	case vcs.VCSIntegrationAdded:
		b.Queue(vcsAddedSQL, d.IntegrationID, d.Name, string(d.Provider), d.APIURL, len(d.Token) > 0, len(d.SSHKey) > 0, d.At, d.Actor)
	case delivery.WebhookDeliveryReceived:
		b.Queue(deliveryReceivedSQL, d.DeliveryID, d.IntegrationID, string(d.Provider), d.Event, d.ExternalID, d.At)
	case delivery.WebhookDeliveryHandled:
		runs := make([]string, len(d.Runs))
		for i, r := range d.Runs {
			runs[i] = r.RunID
		}
		note := ""
		if len(d.Notes) > 0 {
			note = d.Notes[0]
		}
		b.Queue(deliveryStatusSQL, e.StreamID, d.At, string(delivery.Handled), note, runs)
	case delivery.WebhookDeliveryIgnored:
		b.Queue(deliveryStatusSQL, e.StreamID, d.At, string(delivery.Ignored), d.Reason, nil)
	case delivery.WebhookDeliveryPoisoned:
		b.Queue(deliveryStatusSQL, e.StreamID, d.At, string(delivery.Poisoned), d.Reason, nil)
	case delivery.WebhookDeliveryReplayRequested:
		b.Queue(deliveryReplaySQL, e.StreamID, d.At)
	}
	return nil
}
