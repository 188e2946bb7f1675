// Package workerpool is the worker pool aggregate: a set of workers
// authenticated by the pool's certificate and secret. The built-in public
// pool is one of them, flagged as public.
package workerpool

import (
	"crypto/subtle"
	"slices"
	"time"
)

// State is a worker pool as its events made it. The zero value is a pool
// that does not exist yet.
type State struct {
	id               string
	created          bool
	deleted          bool
	createdAt        time.Time
	name             string
	description      string
	labels           []string
	driftRunLimit    int
	public           bool
	certificate      Certificate
	secretHash       string
	generation       int
	cycleRequestedAt time.Time
	driftRuns        []string // drift runs holding a slot of the drift run limit
}

// Exists reports whether the pool was created and not deleted.
func (s State) Exists() bool { return s.created && !s.deleted }

// Deleted reports whether the pool was deleted.
func (s State) Deleted() bool { return s.deleted }

// ID is the pool id ("wp_…").
func (s State) ID() string { return s.id }

// CreatedAt is when the pool was created.
func (s State) CreatedAt() time.Time { return s.createdAt }

// Name is the pool's display name.
func (s State) Name() string { return s.name }

// Description is the pool's description.
func (s State) Description() string { return s.description }

// Labels are the pool's labels, sorted.
func (s State) Labels() []string { return slices.Clone(s.labels) }

// DriftRunLimit is the maximum number of concurrent drift-detection runs;
// 0 means the limit is disabled.
func (s State) DriftRunLimit() int { return s.driftRunLimit }

// Public reports whether this is the built-in public pool.
func (s State) Public() bool { return s.public }

// Certificate is the pool's current certificate.
func (s State) Certificate() Certificate { return s.certificate }

// SecretHash is the hash of the pool's current secret.
func (s State) SecretHash() string { return s.secretHash }

// Generation counts the pool's credentials: 1 at creation, +1 per reset.
// Connections authenticated with an older generation must be closed.
func (s State) Generation() int { return s.generation }

// CycleRequestedAt is when a cycle was last requested; zero if never.
// Workers started before it should exit.
func (s State) CycleRequestedAt() time.Time { return s.cycleRequestedAt }

// SecretMatches reports whether hash is the hash of the pool's current
// secret. The comparison takes the same time wherever the hashes differ, so
// response times do not reveal the hash. A deleted or missing pool matches
// nothing.
func (s State) SecretMatches(hash string) bool {
	return s.Exists() && s.secretHash != "" && subtle.ConstantTimeCompare([]byte(s.secretHash), []byte(hash)) == 1
}
