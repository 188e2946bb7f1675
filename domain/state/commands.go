package state

import "time"

// Command is a request to change a stack's managed state. Every command
// carries who asks (Actor) and when (At). Facts the aggregate cannot know
// (the digests of the bytes, the blob key they were written to, whether a
// run has ended) come in with the command.
type Command interface{ isCommand() }

// Content describes the bytes of a state file: what the caller parsed from
// the Terraform state JSON and the digests and blob key of the bytes.
type Content struct {
	Serial  uint64
	Lineage string
	MD5     string // lower-case hex
	SHA256  string // lower-case hex
	Size    int64
	BlobKey string
}

// Write stores a new version written by a run's terraform (http backend
// POST). LockID is the backend's ?ID= parameter: required, and equal to the
// holder's, when the state is locked.
type Write struct {
	StackID string
	Content Content
	RunID   string
	LockID  string
	Actor   string
	At      time.Time
}

// Import stores an existing state file as the first version of a stack that
// has no state yet.
type Import struct {
	StackID string
	Content Content
	Actor   string
	At      time.Time
}

// Rollback writes the content of an older version as a new version. It is an
// administrator's action, allowed only while the actor holds the stack's
// manual lock and no run is in progress; the caller establishes both facts.
// BlobKey is where the caller copied the old content for the new version.
type Rollback struct {
	StackID        string
	ToVersion      int
	BlobKey        string
	HoldsStackLock bool
	RunInProgress  bool
	Actor          string
	At             time.Time
}

// Lock takes the Terraform lock (http backend LOCK). Info is the lock info
// JSON terraform sent; LockID its "ID" field. Locking again with the lock
// already held changes nothing, so a retried request is harmless.
// EndedRunID names a run the caller saw has ended: a lock that run still
// holds is stale and is released first.
type Lock struct {
	LockID     string
	Info       string
	RunID      string
	EndedRunID string
	Actor      string
	At         time.Time
}

// Unlock releases the Terraform lock (http backend UNLOCK). With a LockID it
// must be the holder's; without one (terraform force-unlock sends an empty
// body) it is a forced release. Either way only the run that took the lock
// may release it, unless Admin is set (the caller sets it for
// administrators). Unlocking a state that is not locked changes nothing.
type Unlock struct {
	LockID string
	RunID  string
	Admin  bool
	Actor  string
	At     time.Time
}

// Delete removes the current state (http backend DELETE). While the state is
// locked only the holder may delete it. Deleting when there is no state
// changes nothing.
type Delete struct {
	LockID string
	RunID  string
	Actor  string
	At     time.Time
}

// RecordDownload records that Actor downloaded version Version outside a run.
type RecordDownload struct {
	Version int
	Actor   string
	At      time.Time
}

func (Write) isCommand()          {}
func (Import) isCommand()         {}
func (Rollback) isCommand()       {}
func (Lock) isCommand()           {}
func (Unlock) isCommand()         {}
func (Delete) isCommand()         {}
func (RecordDownload) isCommand() {}
