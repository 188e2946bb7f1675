package apikey

import "time"

// Command is a request to change an API key. Every command carries who asks
// (Actor) and when (At).
type Command interface{ isCommand() }

// Create makes a key from the hash of a freshly generated secret; the
// secret itself never reaches the domain.
type Create struct {
	KeyID      string // "ak_…"
	Name       string
	Role       Role
	SecretHash string // HashSecret of the secret
	Actor      string
	At         time.Time
}

// Revoke ends a key: from then on it is refused, and its name is free.
type Revoke struct {
	Actor string
	At    time.Time
}

func (Create) isCommand() {}
func (Revoke) isCommand() {}
