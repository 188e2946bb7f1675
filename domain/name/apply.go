package name

import "github.com/gantryhq/gantry/domain"

// Apply folds e into the reservation. It never fails: events are facts
// already decided; unknown events are ignored. Events may be passed by value
// or by pointer.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case NameReserved:
		s.owner = e.OwnerID
	case NameReleased:
		if s.owner == e.OwnerID {
			s.owner = ""
		}
	}
}
