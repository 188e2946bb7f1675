// Package worker is the worker aggregate: the logical entity of a pool that
// processes one run at a time. Together with the event store's expected
// version, it is what keeps two schedulers from giving a worker two runs.
package worker

import (
	"maps"
	"time"
)

// Status is a worker's status, derived from its events.
type Status string

// Worker statuses. IDLE, BUSY and DRAINED are the ones views show; LOST and
// EXITED workers are gone and take no more work.
const (
	Idle    Status = "IDLE"
	Busy    Status = "BUSY"
	Drained Status = "DRAINED"
	Lost    Status = "LOST"
	Exited  Status = "EXITED"
)

// State is a worker as its events made it. The zero value is a worker that
// has not registered.
type State struct {
	id           string
	poolID       string
	metadata     map[string]string
	version      string
	registeredAt time.Time
	drained      bool
	runID        string
	lost         bool
	exited       bool
	goneAt       time.Time
	goneNote     string
}

// Exists reports whether the worker registered (it may be gone since).
func (s State) Exists() bool { return s.id != "" }

// Gone reports whether the worker was lost or exited: it takes no more work.
func (s State) Gone() bool { return s.lost || s.exited }

// ID is the worker id ("wkr_…").
func (s State) ID() string { return s.id }

// PoolID is the worker's pool.
func (s State) PoolID() string { return s.poolID }

// Metadata are the tags the launcher sent at registration.
func (s State) Metadata() map[string]string { return maps.Clone(s.metadata) }

// LauncherVersion is the version its launcher reported at registration,
// "" if it reported none.
func (s State) LauncherVersion() string { return s.version }

// RegisteredAt is when the worker registered.
func (s State) RegisteredAt() time.Time { return s.registeredAt }

// Status is LOST or EXITED for a gone worker, else DRAINED if drained (even
// while it finishes a run), BUSY if it has a run, IDLE otherwise. Empty for a
// worker that never registered.
func (s State) Status() Status {
	switch {
	case !s.Exists():
		return ""
	case s.lost:
		return Lost
	case s.exited:
		return Exited
	case s.drained:
		return Drained
	case s.runID != "":
		return Busy
	}
	return Idle
}

// Drained reports whether the worker was drained.
func (s State) Drained() bool { return s.drained }

// RunID is the run the worker is processing, or was when it went away.
func (s State) RunID() string { return s.runID }

// GoneAt is when the worker was lost or exited, and GoneNote why.
func (s State) GoneAt() time.Time { return s.goneAt }

// GoneNote says why the worker was lost or exited.
func (s State) GoneNote() string { return s.goneNote }
