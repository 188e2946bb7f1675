package name

import (
	"fmt"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
)

// Decide returns the events c causes on the reservation s, or an error: a
// *domain.ValidationError for bad input, domain.ErrAlreadyExists for a name
// that belongs to another owner. No events and no error means c changes
// nothing. s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Reserve:
		if err := check(c.Name, c.OwnerID, c.Actor, c.At); err != nil {
			return nil, err
		}
		switch s.owner {
		case "":
			return []Event{NameReserved{Name: c.Name, OwnerID: c.OwnerID, At: c.At, Actor: c.Actor}}, nil
		case c.OwnerID:
			return nil, nil
		}
		return nil, fmt.Errorf("%s name %q is taken by %s: %w", c.Kind, c.Name, s.owner, domain.ErrAlreadyExists)
	case Release:
		if err := check(c.Name, c.OwnerID, c.Actor, c.At); err != nil {
			return nil, err
		}
		if s.owner != c.OwnerID {
			return nil, nil
		}
		return []Event{NameReleased{Name: c.Name, OwnerID: c.OwnerID, At: c.At, Actor: c.Actor}}, nil
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown name command %T", c)}
}

// check validates what both commands carry. Whether a name is a good stack
// or pool name is the stack's or pool's call, decided before its reservation.
func check(name, owner, actor string, at time.Time) error {
	var p domain.Problems
	if strings.TrimSpace(name) == "" {
		p.Add("name", "must not be empty")
	}
	if owner == "" {
		p.Add("owner_id", "must not be empty")
	}
	p.CheckOrigin(actor, at)
	return p.Err()
}
