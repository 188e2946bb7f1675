package worker

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// Limits on registration metadata and notes.
const (
	MaxMetadataEntries     = 50
	MaxMetadataValueLength = 256
	MaxNoteLength          = 2000
	MaxVersionLength       = 128
)

var metadataKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Decide returns the events c causes on the worker s, or an error: a
// *domain.ValidationError for bad input, domain.ErrNotFound for a worker that
// never registered, domain.ErrAlreadyExists for registering an existing id,
// ErrGone for work offered to a lost or exited worker, and a *NotIdleError
// for a run offered to a busy or drained one. No events and no error means c
// changes nothing. s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Register:
		return register(s, c)
	case Heartbeat:
		return nil, s.precheck(c.Actor, c.At, nil, true)
	case Drain:
		return s.drain(c)
	case Undrain:
		return s.undrain(c)
	case AssignRun:
		return s.assignRun(c)
	case RunFinished:
		return s.runFinished(c)
	case MarkLost:
		return s.markLost(c)
	case Deregister:
		return s.deregister(c)
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown worker command %T", c)}
}

// precheck validates the command's origin on top of the problems already
// found, then requires that the worker registered and, if alive is set, that
// it is not gone.
func (s State) precheck(actor string, at time.Time, p domain.Problems, alive bool) error {
	p.CheckOrigin(actor, at)
	if err := p.Err(); err != nil {
		return err
	}
	if !s.Exists() {
		return fmt.Errorf("worker: %w", domain.ErrNotFound)
	}
	if alive && s.Gone() {
		return fmt.Errorf("worker %s is %s: %w", s.id, s.Status(), ErrGone)
	}
	return nil
}

func register(s State, c Register) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Worker.Validate("worker_id", c.WorkerID))
	p.Check(ids.WorkerPool.Validate("pool_id", c.PoolID))
	if len(c.Metadata) > MaxMetadataEntries {
		p.Addf("metadata", "at most %d entries", MaxMetadataEntries)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Metadata)) { // sorted: the same input gives the same error
		if !metadataKey.MatchString(k) {
			p.Addf("metadata", "key %q: use 1-64 letters, digits, '_', '-' or '.'", k)
		}
		p.CheckText("metadata."+k, c.Metadata[k], MaxMetadataValueLength, false)
	}
	p.CheckText("launcher_version", c.LauncherVersion, MaxVersionLength, false)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, fmt.Errorf("worker %s: %w", s.id, domain.ErrAlreadyExists)
	}
	metadata := maps.Clone(c.Metadata)
	if len(metadata) == 0 {
		metadata = nil // nil and empty mean the same; store one of them
	}
	return []Event{WorkerRegistered{WorkerID: c.WorkerID, PoolID: c.PoolID, Metadata: metadata, LauncherVersion: c.LauncherVersion, At: c.At, Actor: c.Actor}}, nil
}

func (s State) drain(c Drain) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil, true); err != nil {
		return nil, err
	}
	if s.drained {
		return nil, nil
	}
	return []Event{WorkerDrained{At: c.At, Actor: c.Actor}}, nil
}

func (s State) undrain(c Undrain) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil, true); err != nil {
		return nil, err
	}
	if !s.drained {
		return nil, nil
	}
	return []Event{WorkerUndrained{At: c.At, Actor: c.Actor}}, nil
}

func (s State) assignRun(c AssignRun) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", c.RunID))
	if err := s.precheck(c.Actor, c.At, p, true); err != nil {
		return nil, err
	}
	switch {
	case s.runID == c.RunID:
		return nil, nil
	case s.drained || s.runID != "":
		return nil, &NotIdleError{Status: s.Status(), RunID: s.runID}
	}
	return []Event{WorkerRunAssigned{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
}

func (s State) runFinished(c RunFinished) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", c.RunID))
	if err := s.precheck(c.Actor, c.At, p, false); err != nil {
		return nil, err
	}
	if s.Gone() || s.runID != c.RunID {
		return nil, nil
	}
	return []Event{WorkerRunFinished{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
}

func (s State) markLost(c MarkLost) ([]Event, error) {
	var p domain.Problems
	p.CheckText("note", c.Note, MaxNoteLength, false)
	if err := s.precheck(c.Actor, c.At, p, false); err != nil {
		return nil, err
	}
	if s.Gone() {
		return nil, nil
	}
	return []Event{WorkerLost{RunID: s.runID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) deregister(c Deregister) ([]Event, error) {
	var p domain.Problems
	p.CheckText("note", c.Note, MaxNoteLength, false)
	if err := s.precheck(c.Actor, c.At, p, false); err != nil {
		return nil, err
	}
	if s.Gone() {
		return nil, nil
	}
	return []Event{WorkerExited{RunID: s.runID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}
