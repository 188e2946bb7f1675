package stack

import (
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

// Event is a fact about a stack. Type names are stable strings stored in the
// event store; all events are schema version 1.
type Event interface{ EventType() string }

// StackCreated: a stack was created. Settings are normalized.
type StackCreated struct {
	StackID      string    `json:"stack_id"`
	Settings     Settings  `json:"settings"`
	ManagedState bool      `json:"managed_state"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
}

// StackSettingsUpdated: the settings were replaced by these (normalized).
type StackSettingsUpdated struct {
	Settings Settings  `json:"settings"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// StackDeleted: the stack was deleted. Forced says the managed state still
// held ManagedResources resources, which the stack no longer manages.
type StackDeleted struct {
	At               time.Time `json:"at"`
	Actor            string    `json:"actor"`
	Forced           bool      `json:"forced,omitempty"`
	ManagedResources int       `json:"managed_resources,omitempty"`
}

// StackEnvSet: an environment variable was created or replaced. A secret
// carries only its ciphertext.
type StackEnvSet struct {
	Key        string    `json:"key"`
	Name       string    `json:"name"`
	Scope      Scope     `json:"scope"`
	Secret     bool      `json:"secret,omitempty"`
	Value      string    `json:"value,omitempty"`
	Ciphertext []byte    `json:"ciphertext,omitempty"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
}

// StackEnvDeleted: an environment variable was removed.
type StackEnvDeleted struct {
	Key   string    `json:"key"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// StackFileMounted: a file was mounted (or replaced) at Path; its content
// is only ever the ciphertext.
type StackFileMounted struct {
	Path       string    `json:"path"`
	Size       int64     `json:"size"`
	Ciphertext []byte    `json:"ciphertext"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
}

// StackFileUnmounted: the file mounted at Path was removed.
type StackFileUnmounted struct {
	Path  string    `json:"path"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// StackLocked: Actor took the manual lock.
type StackLocked struct {
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// StackUnlocked: the manual lock held by Holder was released, by Actor.
type StackUnlocked struct {
	Holder string    `json:"holder"`
	Forced bool      `json:"forced,omitempty"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

// StackRunEnqueued: a run joined the lock queue; Actor triggered it.
type StackRunEnqueued struct {
	RunID   string    `json:"run_id"`
	RunType run.Type  `json:"run_type"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

// StackLockAcquired: the head of the queue took the run lock.
type StackLockAcquired struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// StackLockReleased: the run holding the run lock ended.
type StackLockReleased struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// StackRunDequeued: a queued run ended before it took the lock.
type StackRunDequeued struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (StackCreated) EventType() string         { return "StackCreated" }
func (StackSettingsUpdated) EventType() string { return "StackSettingsUpdated" }
func (StackDeleted) EventType() string         { return "StackDeleted" }
func (StackEnvSet) EventType() string          { return "StackEnvSet" }
func (StackEnvDeleted) EventType() string      { return "StackEnvDeleted" }
func (StackFileMounted) EventType() string     { return "StackFileMounted" }
func (StackFileUnmounted) EventType() string   { return "StackFileUnmounted" }
func (StackLocked) EventType() string          { return "StackLocked" }
func (StackUnlocked) EventType() string        { return "StackUnlocked" }
func (StackRunEnqueued) EventType() string     { return "StackRunEnqueued" }
func (StackLockAcquired) EventType() string    { return "StackLockAcquired" }
func (StackLockReleased) EventType() string    { return "StackLockReleased" }
func (StackRunDequeued) EventType() string     { return "StackRunDequeued" }

// Events returns a zero value of every stack event type, for registration in
// the event store.
func Events() []Event {
	return []Event{
		StackCreated{}, StackSettingsUpdated{}, StackDeleted{}, StackEnvSet{}, StackEnvDeleted{},
		StackLocked{}, StackUnlocked{}, StackRunEnqueued{}, StackLockAcquired{}, StackLockReleased{},
		StackRunDequeued{}, StackFileMounted{}, StackFileUnmounted{},
	}
}
