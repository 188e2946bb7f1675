package protocol

import (
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

// Worker message kinds: the last token of WorkerSubject(pool, worker, kind).
const (
	KindAssign = "assign" // an Assignment
	KindStop   = "stop"   // a StopMessage
)

// Assignment is the message a worker receives when it is given a run.
type Assignment struct {
	RunID    string     `json:"run_id"`
	StackID  string     `json:"stack_id"`
	PoolID   string     `json:"pool_id"`
	WorkerID string     `json:"worker_id"`
	Type     run.Type   `json:"type"`
	Status   run.Status `json:"status"` // READY (start from the beginning) or CONFIRMED (apply the saved plan)
	Commit   string     `json:"commit"`
	// RunVersion is the run stream's version after RunAssigned.
	RunVersion int64     `json:"run_version"`
	AssignedAt time.Time `json:"assigned_at"`
}

// StopMessage tells a worker to stop its run.
type StopMessage struct {
	RunID string `json:"run_id"`
	Note  string `json:"note,omitempty"`
}

// Kinds of BroadcastMessage.
const (
	// BroadcastCycle asks every worker of a pool to exit once its run is
	// done or handed back (a cycle).
	BroadcastCycle = "cycle"
	// BroadcastReset tells every launcher of a pool that the pool's secret
	// changed: its workers are gone, and a launcher still connected with
	// the old secret must exit at once.
	BroadcastReset = "reset"
)

// BroadcastMessage goes to every worker of a pool, on BroadcastSubject.
type BroadcastMessage struct {
	Kind string `json:"kind"`
}

// HeaderPhase is the header carrying the run.Phase of a run log message on
// RunLogsSubject.
const HeaderPhase = "Gantry-Phase"
