package name

import "time"

// Command is a request to change a name reservation. Every command carries
// who asks (Actor) and when (At).
type Command interface{ isCommand() }

// Reserve gives Name to OwnerID. Reserving a name its owner already holds
// changes nothing; a name someone else holds is refused.
type Reserve struct {
	// Kind names what is named ("stack", "worker pool") in the refusal.
	Kind    string
	Name    string
	OwnerID string
	Actor   string
	At      time.Time
}

// Release frees Name if OwnerID holds it; otherwise it changes nothing, so
// a repeated release cannot free the name of its next owner.
type Release struct {
	Name    string
	OwnerID string
	Actor   string
	At      time.Time
}

func (Reserve) isCommand() {}
func (Release) isCommand() {}
