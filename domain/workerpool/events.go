package workerpool

import "time"

// Event is a fact about a worker pool. Type names are stable strings stored
// in the event store; all events are schema version 1.
type Event interface{ EventType() string }

// WorkerPoolCreated: a pool was created, at credential generation 1.
type WorkerPoolCreated struct {
	PoolID        string      `json:"pool_id"`
	Name          string      `json:"name"`
	Description   string      `json:"description,omitempty"`
	Labels        []string    `json:"labels,omitempty"`
	DriftRunLimit int         `json:"drift_run_limit,omitempty"`
	Public        bool        `json:"public,omitempty"`
	Certificate   Certificate `json:"certificate"`
	SecretHash    string      `json:"secret_hash"`
	Generation    int         `json:"generation"`
	At            time.Time   `json:"at"`
	Actor         string      `json:"actor"`
}

// WorkerPoolUpdated: the pool's descriptive settings were replaced.
type WorkerPoolUpdated struct {
	Name          string    `json:"name"`
	Description   string    `json:"description,omitempty"`
	Labels        []string  `json:"labels,omitempty"`
	DriftRunLimit int       `json:"drift_run_limit,omitempty"`
	At            time.Time `json:"at"`
	Actor         string    `json:"actor"`
}

// WorkerPoolReset: new credentials; Generation is the new generation.
type WorkerPoolReset struct {
	Certificate Certificate `json:"certificate"`
	SecretHash  string      `json:"secret_hash"`
	Generation  int         `json:"generation"`
	At          time.Time   `json:"at"`
	Actor       string      `json:"actor"`
}

// WorkerPoolCycleRequested: every worker of the pool was asked to exit.
type WorkerPoolCycleRequested struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerPoolDeleted: the pool was deleted.
type WorkerPoolDeleted struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (WorkerPoolCreated) EventType() string        { return "WorkerPoolCreated" }
func (WorkerPoolUpdated) EventType() string        { return "WorkerPoolUpdated" }
func (WorkerPoolReset) EventType() string          { return "WorkerPoolReset" }
func (WorkerPoolCycleRequested) EventType() string { return "WorkerPoolCycleRequested" }
func (WorkerPoolDeleted) EventType() string        { return "WorkerPoolDeleted" }

// Events returns a zero value of every worker pool event type, for
// registration in the event store.
func Events() []Event {
	return []Event{WorkerPoolCreated{}, WorkerPoolUpdated{}, WorkerPoolReset{}, WorkerPoolCycleRequested{}, WorkerPoolDeleted{},
		WorkerPoolDriftRunStarted{}, WorkerPoolDriftRunEnded{}}
}
