package stack

import (
	"bytes"
	"maps"
	"slices"

	"github.com/gantryhq/gantry/domain"
)

// Apply folds e into the stack. It never fails: events are facts already
// decided; unknown events are ignored. Events may be passed by value or by
// pointer. Maps and slices are replaced, never written in place, so copies of
// a State stay independent.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case StackCreated:
		s.id, s.created, s.createdAt, s.createdBy = e.StackID, true, e.At, e.Actor
		s.settings, s.managedState = e.Settings.clone(), e.ManagedState
	case StackSettingsUpdated:
		s.settings = e.Settings.clone()
	case StackDeleted:
		s.deleted = true
	case StackEnvSet:
		env := maps.Clone(s.env)
		if env == nil {
			env = map[string]EnvVar{}
		}
		env[e.Key] = EnvVar{Key: e.Key, Name: e.Name, Scope: e.Scope, Secret: e.Secret, Value: e.Value, Ciphertext: bytes.Clone(e.Ciphertext)}
		s.env = env
	case StackEnvDeleted:
		env := maps.Clone(s.env)
		delete(env, e.Key)
		s.env = env
	case StackFileMounted:
		files := maps.Clone(s.files)
		if files == nil {
			files = map[string]MountedFile{}
		}
		files[e.Path] = MountedFile{Path: e.Path, Size: e.Size, Ciphertext: bytes.Clone(e.Ciphertext)}
		s.files = files
	case StackFileUnmounted:
		files := maps.Clone(s.files)
		delete(files, e.Path)
		s.files = files
	case StackLocked:
		s.manualLock = &ManualLock{By: e.Actor, Note: e.Note, At: e.At}
	case StackUnlocked:
		s.manualLock = nil
	case StackRunEnqueued:
		s.queue = append(slices.Clip(s.queue), queuedRun{runID: e.RunID, triggeredBy: e.Actor})
	case StackLockAcquired:
		s.lockHolder = e.RunID
		s.queue = s.without(e.RunID)
	case StackLockReleased:
		if s.lockHolder == e.RunID {
			s.lockHolder = ""
		}
	case StackRunDequeued:
		s.queue = s.without(e.RunID)
	}
}

// without returns a new queue without runID.
func (s State) without(runID string) []queuedRun {
	return slices.DeleteFunc(slices.Clone(s.queue), func(q queuedRun) bool { return q.runID == runID })
}
