// Package poolauth checks the credentials a worker pool launcher presents to NATS (its pool id
// and pool secret) against the pool's events: the bus.PoolVerifier of the embedded server.
package poolauth

import (
	"context"
	"fmt"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// Reasons for refusing a launcher. Each matches bus.ErrRefused.
var (
	ErrUnknownPool = fmt.Errorf("no such worker pool: %w", bus.ErrRefused)
	ErrDeletedPool = fmt.Errorf("worker pool deleted: %w", bus.ErrRefused)
	ErrWrongSecret = fmt.Errorf("not the pool's current secret: %w", bus.ErrRefused)
)

// Events is what the verifier reads: a pool's stream, and the registry that decodes it.
// *eventstore.Store is one.
type Events interface {
	Load(ctx context.Context, streamID string) ([]eventstore.Event, error)
	Registry() *eventstore.Registry
}

// Verifier checks pool secrets against the pools' current state in the event store.
type Verifier struct {
	events Events
}

// New returns a verifier reading events.
func New(events Events) *Verifier { return &Verifier{events: events} }

// VerifyPoolSecret returns the credential generation of pool poolID if secret is its current
// secret and the pool exists. It loads the pool's stream on every call and caches nothing, so a
// reset or a deletion refuses the old secret as soon as its event is appended. An error matching
// bus.ErrRefused (ErrUnknownPool, ErrDeletedPool, ErrWrongSecret) means the credentials are
// wrong; any other error means they could not be checked. Errors never contain the secret.
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

// load folds the events of pool's stream into its state.
func (v *Verifier) load(ctx context.Context, poolID string) (workerpool.State, error) {
	var pool workerpool.State
	events, err := v.events.Load(ctx, poolID)
	if err != nil {
		return pool, fmt.Errorf("check the secret of pool %s: %w", poolID, err)
	}
	for _, e := range events {
		// Stream ids are unique across types; this only guards against an id that names
		// some other aggregate's stream.
		if e.StreamType != eventstore.StreamWorkerPool {
			return workerpool.State{}, fmt.Errorf("pool %s: stream is a %s: %w", poolID, e.StreamType, ErrUnknownPool)
		}
		decoded, err := v.events.Registry().Decode(e)
		if err != nil {
			return pool, fmt.Errorf("check the secret of pool %s: %w", poolID, err)
		}
		event, ok := decoded.(workerpool.Event)
		if !ok {
			return pool, fmt.Errorf("check the secret of pool %s: event %s (%s) is not a worker pool event", poolID, e.ID, e.Type)
		}
		pool.Apply(event)
	}
	return pool, nil
}

var _ bus.PoolVerifier = (*Verifier)(nil)
