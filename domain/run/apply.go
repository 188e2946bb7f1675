package run

import (
	"slices"
	"time"

	"github.com/gantryhq/gantry/domain"
)

// Apply folds e into the run. It never fails: events are facts already
// decided; unknown events are ignored. Events may be passed by value or by
// pointer.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case RunQueued:
		s.id, s.stackID, s.typ, s.commit = e.RunID, e.StackID, e.Type, e.Commit
		s.taskCommand, s.drift, s.autodeploy, s.triggeredBy = e.TaskCommand, e.Drift, e.Autodeploy, e.Actor
		s.destroy, s.retryOf = e.Destroy, e.RetryOf
		s.deliveryID = e.DeliveryID
		s.transition(Queued, e.At, e.Actor, "")
	case RunReady:
		s.transition(Ready, e.At, e.Actor, "")
	case RunAssigned:
		s.workerID, s.poolID = e.WorkerID, e.PoolID
		// Each pool once, the latest assignment's last.
		pools := slices.DeleteFunc(slices.Clone(s.pools), func(p string) bool { return p == e.PoolID })
		s.pools = append(pools, e.PoolID)
	case RunUnassigned:
		s.workerID, s.poolID = "", ""
	case RunHandedBack:
		s.workerID, s.poolID, s.phaseDone = "", "", false
		s.transition(e.To, e.At, e.Actor, e.Note)
	case RunPhaseStarted:
		s.phaseDone = false
		s.transition(e.Phase.Status(), e.At, e.Actor, "")
	case RunPhaseFinished:
		s.phaseDone = true
		if e.Phase == PhasePlanning {
			s.hasChanges = e.HasChanges
			s.plan = nil
			if e.Plan != nil {
				p := *e.Plan
				s.plan = &p
			}
		}
		s.phases = append(slices.Clip(s.phases), PhaseResult{
			Phase: e.Phase, ExitCode: e.ExitCode, Duration: e.Duration, HasChanges: e.HasChanges, At: e.At,
		})
	case RunUnconfirmed:
		// The worker saved the workspace and left; any worker of the pool applies.
		s.workerID, s.poolID = "", ""
		s.transition(Unconfirmed, e.At, e.Actor, "")
	case RunConfirmed:
		s.transition(Confirmed, e.At, e.Actor, "")
	case RunReplanRequested:
		s.transition(ReplanRequested, e.At, e.Actor, "")
	case RunStopRequested:
		s.stopRequestBy, s.stopNote = e.Actor, e.Note
	case RunFinished:
		s.end(Finished, e.At, e.Actor, "")
	case RunFailed:
		s.end(Failed, e.At, e.Actor, e.Note)
	case RunDiscarded:
		s.end(Discarded, e.At, e.Actor, e.Note)
	case RunStopped:
		s.end(Stopped, e.At, e.Actor, e.Note)
	case RunCanceled:
		s.end(Canceled, e.At, e.Actor, e.Note)
	case RunSkipped:
		s.end(Skipped, e.At, e.Actor, e.Note)
	case RunOutputsRecorded:
		s.outputsRecorded, s.outputs = true, slices.Clone(e.Outputs)
	}
}

// transition records a status change. The history is clipped before the
// append so that a State copied by value never sees the other's entries.
func (s *State) transition(to Status, at time.Time, actor, note string) {
	s.status = to
	s.history = append(slices.Clip(s.history), HistoryEntry{Status: to, At: at, Actor: actor, Note: note})
}

// end moves the run to a terminal status and lets go of its worker.
func (s *State) end(to Status, at time.Time, actor, note string) {
	s.workerID, s.poolID = "", ""
	s.transition(to, at, actor, note)
}
