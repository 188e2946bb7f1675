// Package stack is the stack aggregate: a unit of infrastructure with its
// settings, environment variables, manual lock, and the FIFO queue of runs
// waiting for its exclusive run lock.
package stack

import (
	"slices"
	"strings"
	"time"
)

// ManualLock is a user's lock on a stack: only the holder may queue tracked
// runs and tasks while it is held.
type ManualLock struct {
	By   string
	Note string
	At   time.Time
}

// queuedRun is one run waiting for the run lock.
type queuedRun struct {
	runID       string
	triggeredBy string
}

// State is a stack as its events made it. The zero value is a stack that does
// not exist yet. Copies are independent: Apply never writes into memory a
// copy shares.
type State struct {
	id           string
	created      bool
	deleted      bool
	createdAt    time.Time
	createdBy    string
	settings     Settings
	managedState bool
	env          map[string]EnvVar      // by key
	files        map[string]MountedFile // by path
	manualLock   *ManualLock
	lockHolder   string // run id holding the run lock
	queue        []queuedRun
}

// Exists reports whether the stack was created and not deleted.
func (s State) Exists() bool { return s.created && !s.deleted }

// Deleted reports whether the stack was deleted.
func (s State) Deleted() bool { return s.deleted }

// ID is the stack id ("stk_…").
func (s State) ID() string { return s.id }

// CreatedAt is when the stack was created.
func (s State) CreatedAt() time.Time { return s.createdAt }

// CreatedBy is who created the stack.
func (s State) CreatedBy() string { return s.createdBy }

// Settings returns the current settings, normalized (defaults applied).
func (s State) Settings() Settings { return s.settings.clone() }

// ManagedState reports whether Gantry keeps the stack's Terraform state.
func (s State) ManagedState() bool { return s.managedState }

// EnvVars lists the environment variables sorted by key. Secrets carry only
// their ciphertext.
func (s State) EnvVars() []EnvVar {
	out := make([]EnvVar, 0, len(s.env))
	for _, v := range s.env {
		out = append(out, v.clone())
	}
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Env returns the variable with key.
func (s State) Env(key string) (EnvVar, bool) {
	v, ok := s.env[key]
	return v.clone(), ok
}

// ManualLock returns the user lock, if a user holds one.
func (s State) ManualLock() (ManualLock, bool) {
	if s.manualLock == nil {
		return ManualLock{}, false
	}
	return *s.manualLock, true
}

// LockHolder is the run holding the exclusive run lock, "" if none.
func (s State) LockHolder() string { return s.lockHolder }

// Queue lists the runs waiting for the run lock, head first.
func (s State) Queue() []string {
	out := make([]string, len(s.queue))
	for i, q := range s.queue {
		out[i] = q.runID
	}
	return out
}

// queued returns the position of runID in the queue, or -1.
func (s State) queued(runID string) int {
	return slices.IndexFunc(s.queue, func(q queuedRun) bool { return q.runID == runID })
}
