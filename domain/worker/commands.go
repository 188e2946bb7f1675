package worker

import "time"

// Command is a request to change a worker. Every command carries who asks
// (Actor) and when (At).
type Command interface{ isCommand() }

// Register records a new worker of a pool. A launcher registers a new
// worker id each time it starts.
type Register struct {
	WorkerID string
	PoolID   string
	Metadata map[string]string // GANTRY_METADATA_<key> tags
	// LauncherVersion is the version of the launcher binary ("v1.4.0",
	// "(devel)" for a development build); "" when the launcher did not say.
	LauncherVersion string
	Actor           string
	At              time.Time
}

// Heartbeat checks that a worker may keep working. It produces no event:
// heartbeats arrive every few seconds per worker and would swamp the event
// store. Liveness (last seen) is tracked outside the aggregate by the
// scheduler's dead-worker detection; the durable fact is WorkerLost when
// heartbeats stop. Decide returns ErrGone for a lost or exited worker, which
// tells the launcher to register again.
type Heartbeat struct {
	Actor string
	At    time.Time
}

// Drain stops the worker from taking new runs; a current run finishes.
type Drain struct {
	Actor string
	At    time.Time
}

// Undrain lets a drained worker take runs again.
type Undrain struct {
	Actor string
	At    time.Time
}

// AssignRun gives the worker a run. Only an IDLE worker accepts one;
// assigning the run it already has is a no-op, so a retrying scheduler is
// harmless.
type AssignRun struct {
	RunID string
	Actor string
	At    time.Time
}

// RunFinished frees the worker from its run. For any other run it changes
// nothing, so a redelivered or late report cannot free the worker's next run.
type RunFinished struct {
	RunID string
	Actor string
	At    time.Time
}

// MarkLost records that the worker stopped sending heartbeats.
type MarkLost struct {
	Note  string
	Actor string
	At    time.Time
}

// Deregister records that the worker exited (launcher shutdown, cycle).
type Deregister struct {
	Note  string
	Actor string
	At    time.Time
}

func (Register) isCommand()    {}
func (Heartbeat) isCommand()   {}
func (Drain) isCommand()       {}
func (Undrain) isCommand()     {}
func (AssignRun) isCommand()   {}
func (RunFinished) isCommand() {}
func (MarkLost) isCommand()    {}
func (Deregister) isCommand()  {}
