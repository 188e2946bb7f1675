package name

import "time"

// Event is a fact about a name reservation. Type names are stable strings
// stored in the event store; all events are schema version 1.
type Event interface{ EventType() string }

// NameReserved: Name now belongs to OwnerID (a stack or pool id).
type NameReserved struct {
	Name    string    `json:"name"`
	OwnerID string    `json:"owner_id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

// NameReleased: OwnerID gave Name up (deleted or renamed).
type NameReleased struct {
	Name    string    `json:"name"`
	OwnerID string    `json:"owner_id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (NameReserved) EventType() string { return "NameReserved" }
func (NameReleased) EventType() string { return "NameReleased" }

// Events returns a zero value of every name reservation event type, for
// registration in the event store.
func Events() []Event { return []Event{NameReserved{}, NameReleased{}} }
