package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/eventstore"
)

// Stack and worker pool names are unique, case-insensitively. The event
// store itself enforces it: each name has a reservation stream whose id is
// derived from the lower-cased name, and a create appends NameReserved to it
// in the same transaction as the aggregate's first event, at the version it
// saw (NoStream for a name never used). Two creates of one name conflict on
// that stream; the retry then finds the name taken. A delete or rename
// appends NameReleased, which frees the name.
//
// The reservation stream is also how names resolve to ids with no read
// model in between: it is always current.

// Stream types of the name reservations.
const (
	StreamStackName = "stackname"
	StreamPoolName  = "poolname"
)

// NameReserved: Name now belongs to OwnerID (a stack or pool id).
type NameReserved struct {
	Name    string    `json:"name"`
	OwnerID string    `json:"owner_id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

// NameReleased: OwnerID gave Name up (deleted or renamed).
type NameReleased struct {
	Name    string    `json:"name"`
	OwnerID string    `json:"owner_id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

// nameEvent is a name reservation stream's event.
type nameEvent interface{ EventType() string }

// EventType is the stable name of the event.
func (NameReserved) EventType() string { return "NameReserved" }

// EventType is the stable name of the event.
func (NameReleased) EventType() string { return "NameReleased" }

func nameEvents() []eventstore.Named { return []eventstore.Named{NameReserved{}, NameReleased{}} }

// Registry returns the domain's event registry plus the name reservation
// events this package appends: the registry every store that commands
// write through must use.
func Registry() (*eventstore.Registry, error) {
	r, err := eventstore.DomainRegistry()
	if err != nil {
		return nil, err
	}
	if err := r.RegisterNamed(nameEvents()...); err != nil {
		return nil, err
	}
	return r, nil
}

// nameState is a name reservation as its events made it.
type nameState struct {
	owner string // "" when free
}

func (n *nameState) apply(e nameEvent) {
	switch e := domain.Deref(e).(type) {
	case NameReserved:
		n.owner = e.OwnerID
	case NameReleased:
		if n.owner == e.OwnerID {
			n.owner = ""
		}
	}
}

// nameCommand is reserve (owner set) or release (release set).
type nameCommand struct {
	kind    string // "stack" or "worker pool", for messages
	name    string
	owner   string
	release bool
	actor   string
	at      time.Time
}

func decideName(n nameState, c nameCommand) ([]nameEvent, error) {
	if c.release {
		if n.owner != c.owner {
			return nil, nil
		}
		return []nameEvent{NameReleased{Name: c.name, OwnerID: c.owner, At: c.at, Actor: c.actor}}, nil
	}
	switch n.owner {
	case "":
		return []nameEvent{NameReserved{Name: c.name, OwnerID: c.owner, At: c.at, Actor: c.actor}}, nil
	case c.owner:
		return nil, nil
	}
	return nil, fmt.Errorf("%s name %q is taken by %s: %w", c.kind, c.name, n.owner, domain.ErrAlreadyExists)
}

// nameStream returns the reservation stream of name in the given stream type.
func nameStream(streamType, name string) eventstore.Stream {
	sum := sha256.Sum256([]byte(strings.ToLower(name)))
	return eventstore.Stream{Type: streamType, ID: streamType + "_" + hex.EncodeToString(sum[:])}
}

// nameOwner returns the id name currently belongs to, "" if none.
func (s *Service) nameOwner(ctx context.Context, streamType, name string) (string, error) {
	a, err := load(ctx, s, nameStream(streamType, name), decideName, (*nameState).apply)
	if err != nil {
		return "", err
	}
	return a.state.owner, nil
}

// reserveName adds to u the reservation of name for owner; releaseName its release.
func reserveName(ctx context.Context, u *unit, streamType, kind, name, owner, actor string, at time.Time) error {
	a, err := get(ctx, u, nameStream(streamType, name), decideName, (*nameState).apply)
	if err != nil {
		return err
	}
	_, err = a.do(nameCommand{kind: kind, name: name, owner: owner, actor: actor, at: at})
	return err
}

func releaseName(ctx context.Context, u *unit, streamType, kind, name, owner, actor string, at time.Time) error {
	a, err := get(ctx, u, nameStream(streamType, name), decideName, (*nameState).apply)
	if err != nil {
		return err
	}
	_, err = a.do(nameCommand{kind: kind, name: name, owner: owner, release: true, actor: actor, at: at})
	return err
}
