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

// BroadcastCycle is the kind of the BroadcastMessage that asks every worker
// of a pool to exit (a cycle).
const BroadcastCycle = "cycle"

// BroadcastMessage goes to every worker of a pool, on BroadcastSubject.
type BroadcastMessage struct {
	Kind string `json:"kind"`
}

// HeaderPhase is the header carrying the run.Phase of a run log message on
// RunLogsSubject.
const HeaderPhase = "Gantry-Phase"
