package state

import (
	"slices"

	"github.com/gantryhq/gantry/domain"
)

// Apply folds e into the state. It never fails: events are facts already
// decided; unknown events are ignored. Events may be passed by value or by
// pointer.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case StateVersionWritten:
		// The history is clipped first so a State copied by value never sees
		// the other's entries.
		s.versions = append(slices.Clip(s.versions), Version{
			Version: e.Version, Serial: e.Serial, Lineage: e.Lineage, MD5: e.MD5, SHA256: e.SHA256,
			Size: e.Size, BlobKey: e.BlobKey, RunID: e.RunID, Kind: e.Kind, RolledBackFrom: e.RolledBackFrom,
			At: e.At, Actor: e.Actor,
		})
		s.current = len(s.versions)
	case StateLocked:
		s.lock = &Holder{LockID: e.LockID, Info: e.Info, RunID: e.RunID, At: e.At, Actor: e.Actor}
	case StateUnlocked:
		s.lock = nil
	case StateDeleted:
		s.current = 0
	case StateDownloaded:
		// Audit only.
	}
}
