package commands

import (
	"context"
	"time"

	"github.com/gantryhq/gantry/domain/name"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// Stack and worker pool names are unique, case-insensitively: a create
// reserves its name (domain/name) in the same append as the aggregate's
// first event, a delete or rename releases it. See package name.

// nameKind is the reservation aggregate of one kind of name.
type nameKind = aggregate.Kind[name.State, name.Command, name.Event]

// nameOwner returns the id a name currently belongs to, "" if none.
func (s *System) nameOwner(ctx context.Context, k nameKind, n string) (string, error) {
	st, err := aggregate.Load(ctx, s.aggs, k, n)
	if err != nil {
		return "", err
	}
	return st.Owner(), nil
}

// reserveName adds to u the reservation of n for owner; kind names what
// is named in a refusal ("stack", "worker pool").
func reserveName(ctx context.Context, u *aggregate.Unit, k nameKind, kind, n, owner, actor string, at time.Time) error {
	a, err := aggregate.Get(ctx, u, k, n)
	if err != nil {
		return err
	}
	_, err = a.Do(name.Reserve{Kind: kind, Name: n, OwnerID: owner, Actor: actor, At: at})
	return err
}

// releaseName adds to u the release of n by owner.
func releaseName(ctx context.Context, u *aggregate.Unit, k nameKind, n, owner, actor string, at time.Time) error {
	a, err := aggregate.Get(ctx, u, k, n)
	if err != nil {
		return err
	}
	_, err = a.Do(name.Release{Name: n, OwnerID: owner, Actor: actor, At: at})
	return err
}
