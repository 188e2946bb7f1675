// Package apikey is the API key aggregate: a named credential with a role,
// created by an administrator and revoked when no longer wanted. Only the
// hash of the key's secret is ever stored; the secret itself is shown once,
// by whoever created the key. Names are unique among live keys through a name
// reservation (domain/name), as stack and pool names are.
package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"
)

// State is an API key as its events made it. The zero value is a key that
// does not exist yet.
type State struct {
	id         string
	created    bool
	revoked    bool
	name       string
	role       Role
	secretHash string
	createdAt  time.Time
	createdBy  string
	revokedAt  time.Time
	revokedBy  string
}

// Exists reports whether the key was created.
func (s State) Exists() bool { return s.created }

// Live reports whether the key was created and not revoked: whether it may
// still be used.
func (s State) Live() bool { return s.created && !s.revoked }

// Revoked reports whether the key was revoked.
func (s State) Revoked() bool { return s.revoked }

// ID is the key id ("ak_…").
func (s State) ID() string { return s.id }

// Name is the key's name, unique among live keys.
func (s State) Name() string { return s.name }

// Role is what the key may do.
func (s State) Role() Role { return s.role }

// CreatedAt is when the key was created.
func (s State) CreatedAt() time.Time { return s.createdAt }

// CreatedBy is the actor who created the key.
func (s State) CreatedBy() string { return s.createdBy }

// RevokedAt is when the key was revoked; zero while it is live.
func (s State) RevokedAt() time.Time { return s.revokedAt }

// RevokedBy is the actor who revoked the key; "" while it is live.
func (s State) RevokedBy() string { return s.revokedBy }

// SecretMatches reports whether secret is the secret of this live key. The
// hashes are compared in constant time, so response times do not reveal the
// stored hash. A revoked or missing key matches nothing.
func (s State) SecretMatches(secret string) bool {
	return s.Live() && s.secretHash != "" && subtle.ConstantTimeCompare([]byte(s.secretHash), []byte(HashSecret(secret))) == 1
}

// HashSecret returns the hex SHA-256 of a key's secret, which is all a key
// stores. A fast hash is right here: the secret is 256 random bits, so no
// dictionary or brute force applies, and a slow hash would only slow down
// every sign-in.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
