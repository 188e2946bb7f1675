package projections

import (
	"crypto/x509"
	"encoding/pem"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
)

// poolsProjection maintains rm_worker_pools from the worker pool events. A
// deleted pool keeps its row, flagged deleted. The secret's hash is not
// copied.
type poolsProjection struct{}

func (poolsProjection) Name() string     { return PoolsName }
func (poolsProjection) Tables() []string { return []string{"rm_worker_pools"} }

// $1 is the pool id, $2 the event's time (updated_at), $3 the pool stream's version.
const (
	poolCreatedSQL = `INSERT INTO rm_worker_pools (id, updated_at, version, created_at, created_by,
		name, description, labels, drift_run_limit, public, generation,
		cert_pem, cert_serial, cert_fingerprint, cert_key_algorithm, cert_key_bits, cert_not_after)
		VALUES ($1, $2, $3, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`
	poolUpdatedSQL = `UPDATE rm_worker_pools SET updated_at = $2, version = $3,
		name = $4, description = $5, labels = $6, drift_run_limit = $7 WHERE id = $1`
	poolResetSQL = `UPDATE rm_worker_pools SET updated_at = $2, version = $3, generation = $4,
		cert_pem = $5, cert_serial = $6, cert_fingerprint = $7, cert_key_algorithm = $8, cert_key_bits = $9, cert_not_after = $10
		WHERE id = $1`
	poolCycleSQL   = `UPDATE rm_worker_pools SET updated_at = $2, version = $3, cycle_requested_at = $2 WHERE id = $1`
	poolDeletedSQL = `UPDATE rm_worker_pools SET updated_at = $2, version = $3, deleted = true WHERE id = $1`
	poolVersionSQL = `UPDATE rm_worker_pools SET version = $2 WHERE id = $1`
)

func (poolsProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	if e.StreamType != eventstore.StreamWorkerPool {
		return nil
	}
	id, v := e.StreamID, e.Version
	switch d := data.(type) {
	case workerpool.WorkerPoolCreated:
		c := d.Certificate
		b.Queue(poolCreatedSQL, id, d.At, v, d.Actor, d.Name, d.Description, textArray(d.Labels), d.DriftRunLimit, d.Public, d.Generation,
			c.PEM, c.Serial, c.Fingerprint, string(c.KeyAlgorithm), c.KeyBits, certNotAfter(c.PEM))
	case workerpool.WorkerPoolUpdated:
		b.Queue(poolUpdatedSQL, id, d.At, v, d.Name, d.Description, textArray(d.Labels), d.DriftRunLimit)
	case workerpool.WorkerPoolReset:
		c := d.Certificate
		b.Queue(poolResetSQL, id, d.At, v, d.Generation, c.PEM, c.Serial, c.Fingerprint, string(c.KeyAlgorithm), c.KeyBits, certNotAfter(c.PEM))
	case workerpool.WorkerPoolCycleRequested:
		b.Queue(poolCycleSQL, id, d.At, v)
	case workerpool.WorkerPoolDeleted:
		b.Queue(poolDeletedSQL, id, d.At, v)
	default:
		b.Queue(poolVersionSQL, id, v)
	}
	return nil
}

// certNotAfter returns the expiry of the PEM certificate, or nil when it
// does not parse (the domain checks only the PEM markers).
func certNotAfter(pemText string) *time.Time {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	t := cert.NotAfter.UTC()
	return &t
}
