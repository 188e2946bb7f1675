package worker

import "time"

// Event is a fact about a worker. Type names are stable strings stored in the
// event store; all events are schema version 1.
type Event interface{ EventType() string }

// WorkerRegistered: a launcher registered a worker.
type WorkerRegistered struct {
	WorkerID string            `json:"worker_id"`
	PoolID   string            `json:"pool_id"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// LauncherVersion is the launcher's version; absent from the events of
	// launchers that did not report one.
	LauncherVersion string    `json:"launcher_version,omitempty"`
	At              time.Time `json:"at"`
	Actor           string    `json:"actor"`
}

// WorkerDrained: the worker takes no new runs.
type WorkerDrained struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerUndrained: the worker takes runs again.
type WorkerUndrained struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerRunAssigned: the worker was given a run.
type WorkerRunAssigned struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerRunFinished: the worker is done with its run.
type WorkerRunFinished struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerLost: the worker stopped sending heartbeats. RunID is the run it
// held, which must be failed or handed back.
type WorkerLost struct {
	RunID string    `json:"run_id,omitempty"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerExited: the worker went away on purpose. RunID is a run it still
// held, if it could not finish or hand it back first.
type WorkerExited struct {
	RunID string    `json:"run_id,omitempty"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (WorkerRegistered) EventType() string  { return "WorkerRegistered" }
func (WorkerDrained) EventType() string     { return "WorkerDrained" }
func (WorkerUndrained) EventType() string   { return "WorkerUndrained" }
func (WorkerRunAssigned) EventType() string { return "WorkerRunAssigned" }
func (WorkerRunFinished) EventType() string { return "WorkerRunFinished" }
func (WorkerLost) EventType() string        { return "WorkerLost" }
func (WorkerExited) EventType() string      { return "WorkerExited" }

// Events returns a zero value of every worker event type, for registration
// in the event store.
func Events() []Event {
	return []Event{WorkerRegistered{}, WorkerDrained{}, WorkerUndrained{}, WorkerRunAssigned{},
		WorkerRunFinished{}, WorkerLost{}, WorkerExited{}}
}
