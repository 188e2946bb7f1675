package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// Limits on what commands carry.
const (
	MaxLineageLength  = 256
	MaxLockIDLength   = 256
	MaxLockInfoLength = 16 << 10
	MaxBlobKeyLength  = 1024
	MaxNoteLength     = 2000
)

// Decide returns the events c causes on the state s, or an error: a
// *domain.ValidationError for bad input, domain.ErrNotFound for a version
// that does not exist, domain.ErrAlreadyExists for an import over an
// existing state, a *SerialError, *LineageError or *LockNotHeldError
// (ErrConflict) for a write that does not fit, a *LockedError (ErrLocked)
// when someone else holds the lock, and a *NotAllowedError for a rollback
// whose preconditions fail. No events and no error means c changes nothing
// (a retried lock, an identical write). s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Write:
		return s.write(c)
	case Import:
		return s.importState(c)
	case Rollback:
		return s.rollback(c)
	case Lock:
		return s.lockState(c)
	case Unlock:
		return s.unlock(c)
	case Delete:
		return s.delete(c)
	case RecordDownload:
		return s.recordDownload(c)
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown state command %T", c)}
}

func (c Content) check(p *domain.Problems) {
	p.CheckText("lineage", c.Lineage, MaxLineageLength, true)
	checkHex(p, "md5", c.MD5, 32)
	checkHex(p, "sha256", c.SHA256, 64)
	if c.Size <= 0 {
		p.Add("size", "must be positive")
	}
	p.CheckText("blob_key", c.BlobKey, MaxBlobKeyLength, true)
}

func checkHex(p *domain.Problems, field, v string, n int) {
	if len(v) != n || strings.ContainsFunc(v, func(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') }) {
		p.Addf(field, "must be %d lower-case hex digits", n)
	}
}

func checkOptionalRun(p *domain.Problems, runID string) {
	if runID != "" {
		p.Check(ids.Run.Validate("run_id", runID))
	}
}

func (s State) locked() error { return &LockedError{Holder: *s.lock} }

// heldBy reports whether a request by runID naming lockID (either may be
// empty) comes from the lock's holder: the lock id, when given, must match,
// and a lock taken by a run can only be used by that run.
func (s State) heldBy(lockID, runID string) bool {
	if lockID != "" && lockID != s.lock.LockID {
		return false
	}
	if lockID == "" && s.lock.RunID == "" {
		return false
	}
	return s.lock.RunID == "" || s.lock.RunID == runID
}

func (s State) write(c Write) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Stack.Validate("stack_id", c.StackID))
	p.Check(ids.Run.Validate("run_id", c.RunID))
	c.Content.check(&p)
	p.CheckText("lock_id", c.LockID, MaxLockIDLength, false)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	switch {
	case s.lock != nil && (c.LockID == "" || !s.heldBy(c.LockID, c.RunID)):
		return nil, s.locked()
	case s.lock == nil && c.LockID != "":
		return nil, &LockNotHeldError{LockID: c.LockID}
	}
	if cur, ok := s.Current(); ok {
		switch {
		case c.Content.Lineage != cur.Lineage:
			return nil, &LineageError{Current: cur.Lineage, Proposed: c.Content.Lineage}
		case c.Content.Serial < cur.Serial:
			return nil, &SerialError{Current: cur.Serial, Proposed: c.Content.Serial}
		case c.Content.SHA256 == cur.SHA256:
			// The same bytes again: a retried request. Nothing new to store.
			return nil, nil
		}
	}
	e := s.newVersion(c.StackID, c.Content, KindWrite, c.At, c.Actor)
	e.RunID = c.RunID
	return []Event{e}, nil
}

func (s State) newVersion(stackID string, c Content, kind Kind, at time.Time, actor string) StateVersionWritten {
	return StateVersionWritten{
		StackID: stackID, Version: s.NextVersion(), Serial: c.Serial, Lineage: c.Lineage, MD5: c.MD5, SHA256: c.SHA256,
		Size: c.Size, BlobKey: c.BlobKey, Kind: kind, At: at, Actor: actor,
	}
}

func (s State) importState(c Import) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Stack.Validate("stack_id", c.StackID))
	c.Content.check(&p)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if cur, ok := s.Current(); ok {
		return nil, fmt.Errorf("stack %s already has a state (version %d): import only into a stack without one: %w", c.StackID, cur.Version, domain.ErrAlreadyExists)
	}
	if s.lock != nil {
		return nil, s.locked()
	}
	return []Event{s.newVersion(c.StackID, c.Content, KindImport, c.At, c.Actor)}, nil
}

func (s State) rollback(c Rollback) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Stack.Validate("stack_id", c.StackID))
	if c.ToVersion < 1 {
		p.Add("version", "must be 1 or more")
	}
	p.CheckText("blob_key", c.BlobKey, MaxBlobKeyLength, true)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	switch {
	case !c.HoldsStackLock:
		return nil, &NotAllowedError{Reason: "lock the stack first: only the holder of the stack lock may roll its state back"}
	case c.RunInProgress:
		return nil, &NotAllowedError{Reason: "a run is in progress on the stack"}
	case s.lock != nil:
		return nil, s.locked()
	}
	old, ok := s.VersionAt(c.ToVersion)
	if !ok {
		return nil, fmt.Errorf("state version %d of stack %s: %w", c.ToVersion, c.StackID, domain.ErrNotFound)
	}
	if old.Version == s.current {
		return nil, &domain.ValidationError{Field: "version", Problem: fmt.Sprintf("version %d is already the current version", old.Version)}
	}
	content := Content{Serial: old.Serial, Lineage: old.Lineage, MD5: old.MD5, SHA256: old.SHA256, Size: old.Size, BlobKey: c.BlobKey}
	e := s.newVersion(c.StackID, content, KindRollback, c.At, c.Actor)
	e.RolledBackFrom = old.Version
	return []Event{e}, nil
}

func (s State) lockState(c Lock) ([]Event, error) {
	var p domain.Problems
	p.CheckText("lock_id", c.LockID, MaxLockIDLength, true)
	switch {
	case len(c.Info) > MaxLockInfoLength:
		p.Addf("info", "must be at most %d bytes", MaxLockInfoLength)
	case !json.Valid([]byte(c.Info)) || !strings.HasPrefix(strings.TrimSpace(c.Info), "{"):
		p.Add("info", "must be a JSON object")
	}
	checkOptionalRun(&p, c.RunID)
	checkOptionalRun(&p, c.EndedRunID)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	locked := StateLocked{LockID: c.LockID, Info: c.Info, RunID: c.RunID, At: c.At, Actor: c.Actor}
	switch {
	case s.lock == nil:
		return []Event{locked}, nil
	case s.lock.LockID == c.LockID && s.lock.RunID == c.RunID:
		return nil, nil // a retried request: the caller has the lock already
	case c.EndedRunID != "" && s.lock.RunID == c.EndedRunID:
		return []Event{
			StateUnlocked{LockID: s.lock.LockID, Forced: true, Note: "run " + c.EndedRunID + " that held the lock has ended", At: c.At, Actor: c.Actor},
			locked,
		}, nil
	}
	return nil, s.locked()
}

func (s State) unlock(c Unlock) ([]Event, error) {
	var p domain.Problems
	p.CheckText("lock_id", c.LockID, MaxLockIDLength, false)
	checkOptionalRun(&p, c.RunID)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.lock == nil {
		return nil, nil
	}
	if !c.Admin && !s.heldBy(c.LockID, c.RunID) {
		return nil, s.locked()
	}
	if c.LockID != "" && c.LockID != s.lock.LockID {
		return nil, s.locked()
	}
	return []Event{StateUnlocked{LockID: s.lock.LockID, Forced: c.LockID == "", At: c.At, Actor: c.Actor}}, nil
}

func (s State) delete(c Delete) ([]Event, error) {
	var p domain.Problems
	p.CheckText("lock_id", c.LockID, MaxLockIDLength, false)
	checkOptionalRun(&p, c.RunID)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.lock != nil && !s.heldBy(c.LockID, c.RunID) {
		return nil, s.locked()
	}
	if s.current == 0 {
		return nil, nil
	}
	return []Event{StateDeleted{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
}

func (s State) recordDownload(c RecordDownload) ([]Event, error) {
	var p domain.Problems
	if c.Version < 1 {
		p.Add("version", "must be 1 or more")
	}
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if _, ok := s.VersionAt(c.Version); !ok {
		return nil, fmt.Errorf("state version %d: %w", c.Version, domain.ErrNotFound)
	}
	return []Event{StateDownloaded{Version: c.Version, At: c.At, Actor: c.Actor}}, nil
}
