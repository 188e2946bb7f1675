package worker

import (
	"maps"

	"github.com/gantryhq/gantry/domain"
)

// Apply folds e into the worker. It never fails: events are facts already
// decided; unknown events are ignored. Events may be passed by value or by
// pointer.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case WorkerRegistered:
		s.id, s.poolID, s.metadata, s.registeredAt = e.WorkerID, e.PoolID, maps.Clone(e.Metadata), e.At
		s.version = e.LauncherVersion
	case WorkerDrained:
		s.drained = true
	case WorkerUndrained:
		s.drained = false
	case WorkerRunAssigned:
		s.runID = e.RunID
	case WorkerRunFinished:
		if s.runID == e.RunID {
			s.runID = ""
		}
	case WorkerLost:
		s.lost, s.goneAt, s.goneNote = true, e.At, e.Note
	case WorkerExited:
		s.exited, s.goneAt, s.goneNote = true, e.At, e.Note
	}
}
