package state

import "time"

// Event is a fact about a stack's managed state. Type names are stable
// strings stored in the event store; all events are schema version 1.
type Event interface{ EventType() string }

// StateVersionWritten: a new version of the state was stored. The bytes were
// written to BlobKey before the event was appended.
type StateVersionWritten struct {
	StackID        string    `json:"stack_id"`
	Version        int       `json:"version"`
	Serial         uint64    `json:"serial"`
	Lineage        string    `json:"lineage"`
	MD5            string    `json:"md5"`
	SHA256         string    `json:"sha256"`
	Size           int64     `json:"size"`
	BlobKey        string    `json:"blob_key"`
	RunID          string    `json:"run_id,omitempty"`
	Kind           Kind      `json:"kind"`
	RolledBackFrom int       `json:"rolled_back_from,omitempty"`
	At             time.Time `json:"at"`
	Actor          string    `json:"actor"`
}

// StateLocked: terraform took the state lock. Info is the lock info JSON it
// sent, kept verbatim so that a second locker is shown exactly what terraform
// expects.
type StateLocked struct {
	LockID string    `json:"lock_id"`
	Info   string    `json:"info"`
	RunID  string    `json:"run_id,omitempty"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

// StateUnlocked: the lock LockID was released; Forced when it was released
// without its holder's unlock request (force-unlock, an administrator, or a
// holder whose run had ended).
type StateUnlocked struct {
	LockID string    `json:"lock_id"`
	Forced bool      `json:"forced,omitempty"`
	Note   string    `json:"note,omitempty"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

// StateDeleted: the current state was deleted; GET finds none until the next
// write. Earlier versions stay listed.
type StateDeleted struct {
	RunID string    `json:"run_id,omitempty"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// StateDownloaded: someone outside a run downloaded a version.
type StateDownloaded struct {
	Version int       `json:"version"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (StateVersionWritten) EventType() string { return "StateVersionWritten" }
func (StateLocked) EventType() string         { return "StateLocked" }
func (StateUnlocked) EventType() string       { return "StateUnlocked" }
func (StateDeleted) EventType() string        { return "StateDeleted" }
func (StateDownloaded) EventType() string     { return "StateDownloaded" }

// Events returns a zero value of every state event type, for registration in
// the event store.
func Events() []Event {
	return []Event{StateVersionWritten{}, StateLocked{}, StateUnlocked{}, StateDeleted{}, StateDownloaded{}}
}
