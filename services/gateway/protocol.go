// Package gateway is the server side of the worker protocol: it receives
// what launchers report over NATS (registration, phase results, the end of
// runs, exit) and hands each to the command layer (Commands, a
// *commands.Service), which decides it on the run, the worker and, when a
// run ends, the stack in one unit of work. The gateway itself only speaks
// NATS: it records worker heartbeats and sweeps for workers that stop
// sending them, which the command layer then marks lost.
//
// # Protocol (for launcher authors)
//
// Every subject is under the launcher's pool, whose NATS permissions only let
// it publish there; the gateway takes the pool from the subject
// (bus.ParseReportSubject, bus.ParseHeartbeatSubject) and ignores any pool in
// a body. A worker of another pool is refused as unknown.
//
// Reports are NATS requests on bus.ReportSubject(pool, kind) with a JSON
// body; the reply is a JSON Reply: {"ok": true, …} or {"ok": false,
// "error": "…", "code": "…"}. Kinds and bodies:
//
//	register        {"worker_id"?: "wkr_…", "metadata"?: {"k": "v"}}  → {"ok", "worker_id"}
//	phase.started   {"worker_id", "run_id", "phase"}
//	phase.finished  {"worker_id", "run_id", "phase", "exit_code", "duration_ms", "has_changes"}
//	run.finished    {"worker_id", "run_id"}            after the last phase and the after_* hooks
//	run.failed      {"worker_id", "run_id", "note"}     note is required
//	run.stopped     {"worker_id", "run_id", "note"?}    after a stop request was carried out
//	exit            {"worker_id", "note"?}              the worker goes away (launcher shutdown)
//
// A run report is accepted only from the worker the run is assigned to, in
// the subject's pool. When a report ends the run (FINISHED, FAILED, STOPPED)
// or leaves it UNCONFIRMED, the worker is freed in the same append; a run
// that ended also releases the stack lock and hands it to the next queued
// run. A report is not idempotent: a repeated phase.finished is refused
// (code "illegal") because the phase already reported its result.
//
// Heartbeats are messages on bus.HeartbeatSubject(pool, worker), body
// ignored. They may be plain publishes; sent as requests they get a Reply,
// with code "gone" when the worker is unknown to the gateway (never
// registered, of another pool, lost or exited): the launcher must then
// register a new worker. A worker that sends no heartbeat for
// Config.HeartbeatTimeout (counted from its registration) is marked lost:
// WorkerLost, and its run goes back to READY (RunUnassigned, when no phase
// had started) or ends FAILED with a note, releasing the stack lock. An exit
// hands the worker's run back or fails it in the same way.
package gateway

import (
	"encoding/json"

	"github.com/gantryhq/gantry/domain/run"
)

// Report kinds: the last tokens of bus.ReportSubject(pool, kind).
const (
	KindRegister      = "register"
	KindPhaseStarted  = "phase.started"
	KindPhaseFinished = "phase.finished"
	KindRunFinished   = "run.finished"
	KindRunFailed     = "run.failed"
	KindRunStopped    = "run.stopped"
	KindExit          = "exit"
)

// Reply codes: what went wrong, for a launcher to act on without parsing
// the message.
const (
	CodeInvalid  = "invalid"   // a malformed body or a value the domain rejects
	CodeUnknown  = "unknown"   // no such worker in this pool, or no such run
	CodeNotYours = "not_yours" // the run is not assigned to this worker
	CodeIllegal  = "illegal"   // the run's lifecycle forbids the report now
	CodeGone     = "gone"      // the worker was lost or exited: register again
	CodeExists   = "exists"    // register: the worker id is taken
	CodeInternal = "internal"  // the gateway failed; retrying may help
)

// Reply answers every report (and heartbeat requests).
type Reply struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
	WorkerID string `json:"worker_id,omitempty"` // register only
}

// RegisterReport is the body of a register report.
type RegisterReport struct {
	WorkerID string            `json:"worker_id,omitempty"` // generated when empty
	Metadata map[string]string `json:"metadata,omitempty"`
}

// PhaseStartedReport is the body of a phase.started report.
type PhaseStartedReport struct {
	WorkerID string    `json:"worker_id"`
	RunID    string    `json:"run_id"`
	Phase    run.Phase `json:"phase"`
}

// PhaseFinishedReport is the body of a phase.finished report.
type PhaseFinishedReport struct {
	WorkerID   string    `json:"worker_id"`
	RunID      string    `json:"run_id"`
	Phase      run.Phase `json:"phase"`
	ExitCode   int       `json:"exit_code"`
	DurationMS int64     `json:"duration_ms"`
	HasChanges bool      `json:"has_changes,omitempty"`
	Note       string    `json:"note,omitempty"` // why the phase failed (a timeout, a hook), if more than the exit code
}

// RunReport is the body of run.finished, run.failed and run.stopped.
type RunReport struct {
	WorkerID string `json:"worker_id"`
	RunID    string `json:"run_id"`
	Note     string `json:"note,omitempty"`
}

// ExitReport is the body of an exit report.
type ExitReport struct {
	WorkerID string `json:"worker_id"`
	Note     string `json:"note,omitempty"`
}

func decodeBody(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return &replyError{code: CodeInvalid, msg: "malformed body: " + err.Error()}
	}
	return nil
}
