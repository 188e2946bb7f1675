package apikey

import "github.com/gantryhq/gantry/domain"

// Apply folds e into the key. It never fails: events are facts already
// decided; unknown events are ignored. Events may be passed by value or by
// pointer.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case APIKeyCreated:
		s.id, s.created, s.name, s.role, s.secretHash = e.KeyID, true, e.Name, e.Role, e.SecretHash
		s.createdAt, s.createdBy = e.At, e.Actor
	case APIKeyRevoked:
		s.revoked, s.revokedAt, s.revokedBy = true, e.At, e.Actor
	}
}
