package apikey

import "time"

// Event is a fact about an API key. Type names are stable strings stored in
// the event store; all events are schema version 1.
type Event interface{ EventType() string }

// APIKeyCreated: a key was created. Only the hash of its secret is kept.
type APIKeyCreated struct {
	KeyID      string    `json:"key_id"`
	Name       string    `json:"name"`
	Role       Role      `json:"role"`
	SecretHash string    `json:"secret_hash"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
}

// APIKeyRevoked: the key was revoked and is refused from now on.
type APIKeyRevoked struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (APIKeyCreated) EventType() string { return "APIKeyCreated" }
func (APIKeyRevoked) EventType() string { return "APIKeyRevoked" }

// Events returns a zero value of every API key event type, for registration
// in the event store.
func Events() []Event { return []Event{APIKeyCreated{}, APIKeyRevoked{}} }
