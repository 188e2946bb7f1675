package commands

import (
	"context"
	"fmt"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// PoolSettings are what UpdatePool changes of a pool: its name stays.
type PoolSettings struct {
	Description   string
	Labels        []string
	DriftRunLimit int
}

// UpdatePool changes a pool's description, labels and drift-detection run
// limit: change edits a copy of the current ones. It returns the pool id.
func (s *Service) UpdatePool(ctx context.Context, c Caller, ref string, change func(*PoolSettings)) (string, error) {
	return s.poolCommand(ctx, c, "update worker pool", ref, func(_ context.Context, _ *aggregate.Unit, pool *poolAggregate) error {
		st := pool.State()
		next := PoolSettings{Description: st.Description(), Labels: st.Labels(), DriftRunLimit: st.DriftRunLimit()}
		change(&next)
		_, err := pool.Do(workerpool.Update{
			Name: st.Name(), Description: next.Description, Labels: next.Labels, DriftRunLimit: next.DriftRunLimit,
			Actor: c.Actor, At: s.now(),
		})
		return err
	})
}

// DeletePool deletes a private pool and frees its name, in one append.
// usedBy names the stacks the caller found on the pool: any refuses the
// delete (*workerpool.InUseError), as does the public pool. Launchers
// holding the pool's token are refused from then on.
func (s *Service) DeletePool(ctx context.Context, c Caller, ref string, usedBy []string) (string, error) {
	return s.poolCommand(ctx, c, "delete worker pool", ref, func(ctx context.Context, u *aggregate.Unit, pool *poolAggregate) error {
		at := s.now()
		name := pool.State().Name()
		if _, err := pool.Do(workerpool.Delete{UsedBy: usedBy, Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return releaseName(ctx, u, aggregate.PoolName, name, pool.State().ID(), c.Actor, at)
	})
}

// poolCommand resolves ref and executes fn on the loaded pool, which must
// exist; it returns the pool id.
func (s *Service) poolCommand(ctx context.Context, c Caller, op, ref string, fn func(context.Context, *aggregate.Unit, *poolAggregate) error) (string, error) {
	poolID, err := s.ResolvePool(ctx, ref)
	if err != nil {
		return "", err
	}
	_, err = s.execute(ctx, op, func(ctx context.Context, u *aggregate.Unit) error {
		pool, err := poolOf(ctx, u, poolID)
		if err != nil {
			return err
		}
		if !pool.State().Exists() {
			return fmt.Errorf("worker pool %s: %w", poolID, domain.ErrNotFound)
		}
		return fn(ctx, u, pool)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, op, "pool_id", poolID, "actor", c.Actor)
	return poolID, nil
}
