// Package poolauth checks the credentials a worker pool launcher presents to NATS (its pool id
// and pool secret) against the pool's events: the bus.PoolVerifier of the embedded server.
package poolauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// Reasons for refusing a launcher. Each matches bus.ErrRefused.
var (
	ErrUnknownPool = fmt.Errorf("no such worker pool: %w", bus.ErrRefused)
	ErrDeletedPool = fmt.Errorf("worker pool deleted: %w", bus.ErrRefused)
	ErrWrongSecret = fmt.Errorf("not the pool's current secret: %w", bus.ErrRefused)
)

// Verifier checks pool secrets against the pools' current state in the event store.
type Verifier struct {
	aggs *aggregate.Repository
}

// New returns a verifier loading pools through aggs, the process's one
// aggregate repository.
func New(aggs *aggregate.Repository) *Verifier { return &Verifier{aggs: aggs} }

// VerifyPoolSecret returns the credential generation of pool poolID if secret is its current
// secret and the pool exists. Every call reads the pool's events appended since the
// repository's cached state, so a reset or a deletion refuses the old secret as soon as its
// event is appended. An error matching bus.ErrRefused (ErrUnknownPool, ErrDeletedPool,
// ErrWrongSecret) means the credentials are wrong; any other error means they could not be
// checked. Errors never contain the secret.
func (v *Verifier) VerifyPoolSecret(ctx context.Context, poolID, secret string) (int, error) {
	if err := ids.WorkerPool.Validate("pool id", poolID); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnknownPool, err)
	}
	pool, err := v.load(ctx, poolID)
	if err != nil {
		return 0, err
	}
	switch {
	case pool.Deleted():
		return 0, fmt.Errorf("pool %s: %w", poolID, ErrDeletedPool)
	case !pool.Exists():
		return 0, fmt.Errorf("pool %s: %w", poolID, ErrUnknownPool)
	case !pool.SecretMatches(keyring.HashPoolSecret(secret)):
		return 0, fmt.Errorf("pool %s: %w", poolID, ErrWrongSecret)
	}
	return pool.Generation(), nil
}

// load returns the pool's state. A stream of another kind of aggregate is no pool: stream ids
// are unique across types, so the id names something else.
func (v *Verifier) load(ctx context.Context, poolID string) (workerpool.State, error) {
	pool, err := aggregate.Load(ctx, v.aggs, aggregate.WorkerPool, poolID)
	if errors.Is(err, aggregate.ErrStreamType) {
		return workerpool.State{}, fmt.Errorf("pool %s: the stream holds another kind of aggregate: %w", poolID, ErrUnknownPool)
	}
	if err != nil {
		return workerpool.State{}, fmt.Errorf("check the secret of pool %s: %w", poolID, err)
	}
	return pool, nil
}

var _ bus.PoolVerifier = (*Verifier)(nil)
