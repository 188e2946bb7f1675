package apikey

import (
	"fmt"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// MaxNameLength bounds a key's name.
const MaxNameLength = 64

// Decide returns the events c causes on the key s, or an error: a
// *domain.ValidationError for bad input, domain.ErrNotFound for a key that
// does not exist or was revoked, domain.ErrAlreadyExists for creating an
// existing one. s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Create:
		return create(s, c)
	case Revoke:
		return s.revoke(c)
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown API key command %T", c)}
}

func create(s State, c Create) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.APIKey.Validate("key_id", c.KeyID))
	p.Check(CheckName(c.Name))
	if !c.Role.Valid() {
		p.Addf("role", "%q is not a role: use %s", c.Role, roleList())
	}
	if !isHex64(c.SecretHash) {
		p.Add("secret_hash", "must be the hex SHA-256 of the secret")
	}
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.created {
		return nil, fmt.Errorf("API key %s: %w", s.id, domain.ErrAlreadyExists)
	}
	return []Event{APIKeyCreated{KeyID: c.KeyID, Name: c.Name, Role: c.Role, SecretHash: c.SecretHash, At: c.At, Actor: c.Actor}}, nil
}

func (s State) revoke(c Revoke) ([]Event, error) {
	var p domain.Problems
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	switch {
	case !s.created:
		return nil, fmt.Errorf("API key: %w", domain.ErrNotFound)
	case s.revoked:
		return nil, fmt.Errorf("API key %s was already revoked: %w", s.id, domain.ErrNotFound)
	}
	return []Event{APIKeyRevoked{At: c.At, Actor: c.Actor}}, nil
}

// CheckName validates a key name: 1 to MaxNameLength letters, digits, '.',
// '_' and '-', starting with a letter or digit, and not starting with the
// key id prefix (a name must never read as an id). Names end up in actors
// ("user:<name>") and on command lines, hence the small alphabet.
func CheckName(name string) error {
	const field = "name"
	idPrefix := string(ids.APIKey) + "_"
	switch {
	case name == "":
		return &domain.ValidationError{Field: field, Problem: "must not be empty"}
	case len(name) > MaxNameLength:
		return &domain.ValidationError{Field: field, Problem: fmt.Sprintf("must be at most %d characters", MaxNameLength)}
	case strings.HasPrefix(name, idPrefix):
		return &domain.ValidationError{Field: field, Problem: fmt.Sprintf("must not start with %q: that prefix is for API key ids", idPrefix)}
	case !isAlnum(rune(name[0])):
		return &domain.ValidationError{Field: field, Problem: "must start with a letter or a digit"}
	}
	for _, r := range name {
		if !isAlnum(r) && r != '.' && r != '_' && r != '-' {
			return &domain.ValidationError{Field: field, Problem: fmt.Sprintf("%q may only contain letters, digits, '.', '_' and '-'", name)}
		}
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
