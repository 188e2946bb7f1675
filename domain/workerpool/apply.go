package workerpool

import (
	"slices"

	"github.com/gantryhq/gantry/domain"
)

// Apply folds e into the pool. It never fails: events are facts already
// decided; unknown events are ignored. Events may be passed by value or by
// pointer.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case WorkerPoolCreated:
		s.id, s.created, s.createdAt, s.public = e.PoolID, true, e.At, e.Public
		s.name, s.description, s.labels, s.driftRunLimit = e.Name, e.Description, slices.Clone(e.Labels), e.DriftRunLimit
		s.certificate, s.secretHash, s.generation = e.Certificate, e.SecretHash, e.Generation
	case WorkerPoolUpdated:
		s.name, s.description, s.labels, s.driftRunLimit = e.Name, e.Description, slices.Clone(e.Labels), e.DriftRunLimit
	case WorkerPoolReset:
		s.certificate, s.secretHash, s.generation = e.Certificate, e.SecretHash, e.Generation
	case WorkerPoolCycleRequested:
		s.cycleRequestedAt = e.At
	case WorkerPoolDeleted:
		s.deleted = true
	case WorkerPoolDriftRunStarted:
		s.driftRuns = append(slices.Clip(s.driftRuns), e.RunID)
	case WorkerPoolDriftRunEnded:
		s.driftRuns = slices.DeleteFunc(slices.Clone(s.driftRuns), func(id string) bool { return id == e.RunID })
	}
}
