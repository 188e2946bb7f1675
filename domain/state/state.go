// Package state is the aggregate of a stack's managed Terraform state: the
// versions written (by runs, an import or a rollback), the Terraform lock and
// the audit of downloads. Its stream is {Type: "state", ID: <stack id>}.
// Decide checks a command against the versions and the lock and returns
// events; Apply folds them in. The bytes themselves live in object storage;
// events carry their checksums and blob key.
package state

import (
	"slices"
	"time"
)

// Kind says how a version came to be.
type Kind string

// Version kinds.
const (
	KindWrite    Kind = "write"    // a run's terraform wrote it through the http backend
	KindImport   Kind = "import"   // an existing state file imported at stack creation
	KindRollback Kind = "rollback" // an administrator restored an older version's content
)

// Version is one stored version of the state, as StateVersionWritten recorded it.
type Version struct {
	Version        int // Gantry's counter: 1, 2, 3…
	Serial         uint64
	Lineage        string
	MD5            string // lower-case hex
	SHA256         string // lower-case hex
	Size           int64
	BlobKey        string
	RunID          string // the run whose terraform wrote it; "" for imports and rollbacks
	Kind           Kind
	RolledBackFrom int // for KindRollback: the version whose content this restores
	At             time.Time
	Actor          string
}

// Holder is whoever holds the Terraform lock.
type Holder struct {
	LockID string
	Info   string // the lock info JSON terraform sent, verbatim
	RunID  string // the run whose credentials took the lock; "" for none
	At     time.Time
	Actor  string
}

// State is a stack's managed state as its events made it. The zero value is
// a stack whose state was never written. Copies are independent: Apply never
// writes into memory a copy shares.
type State struct {
	versions []Version
	current  int // version number of the current content; 0 when there is none
	lock     *Holder
}

// HasState reports whether there is a current state: something was written
// and not deleted since.
func (s State) HasState() bool { return s.current != 0 }

// Current returns the version GET serves.
func (s State) Current() (Version, bool) {
	if s.current == 0 {
		return Version{}, false
	}
	return s.versions[s.current-1], true
}

// VersionAt returns version n (1-based).
func (s State) VersionAt(n int) (Version, bool) {
	if n < 1 || n > len(s.versions) {
		return Version{}, false
	}
	return s.versions[n-1], true
}

// Versions lists every version ever written, oldest first. A deletion does
// not remove versions: they stay listed and can be rolled back to.
func (s State) Versions() []Version { return slices.Clone(s.versions) }

// NextVersion is the number the next written version gets.
func (s State) NextVersion() int { return len(s.versions) + 1 }

// Holder returns the lock holder, if the state is locked.
func (s State) Holder() (Holder, bool) {
	if s.lock == nil {
		return Holder{}, false
	}
	return *s.lock, true
}
