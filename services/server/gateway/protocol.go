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
//	run.job         {"worker_id", "run_id"}            → {"ok", "job": Job}
//	phase.started   {"worker_id", "run_id", "phase", "finished"?: {"phase", "exit_code", …}} → {"ok", "state_credentials"?: sealed}
//	phase.credentials {"worker_id", "run_id", "phase"} → {"ok", "state_credentials"?: sealed}
//	phase.finished  {"worker_id", "run_id", "phase", "exit_code", "duration_ms", "has_changes", "note"?} → {"ok", "run_status"}
//	run.finished    {"worker_id", "run_id", "finished"?} after the last phase and the after_* hooks
//	run.failed      {"worker_id", "run_id", "note"}     note is required
//	run.stopped     {"worker_id", "run_id", "note"?}    after a stop request was carried out
//	exit            {"worker_id", "note"?}              the worker goes away (launcher shutdown)
//
// run.job returns what the worker needs to execute its run (Job): the
// stack's settings and variables, secret values sealed to the pool's public
// key (package seal). The answer to phase.started carries the phase's
// managed-state credentials sealed likewise (JSON {"username", "password"}),
// or none when the stack's state is not managed or the phase does not touch
// state; phase.credentials asks for them on their own, for a phase the
// domain started by itself (APPLYING of an autodeploy run). The launcher
// passes them to that phase only, as TF_HTTP_USERNAME and TF_HTTP_PASSWORD. A phase.started refused
// because a stop was requested has the code "stop_requested": the launcher
// then ends the run STOPPED.
//
// A run report is accepted only from the worker the run is assigned to, in
// the subject's pool. When a report ends the run (FINISHED, FAILED, STOPPED)
// or leaves it UNCONFIRMED, the worker is freed in the same append; a run
// that ended also releases the stack lock and hands it to the next queued
// run. A report may carry a report id in the NATS header
// Gantry-Report-Id (HeaderReportID), the same on every retry: a repeat is
// answered with the first answer (kept for an hour), so a launcher whose
// request timed out sends it again without risk. Without an id, a repeated
// phase.finished is refused (code "illegal"): the phase already reported.
//
// Messages to workers: the gateway forwards what the event store records
// for a worker. A stop request goes to the run's worker on
// bus.WorkerSubject(pool, worker, KindStop) as a StopMessage; a pool's cycle
// request goes to every worker of the pool on bus.BroadcastSubject(pool) as
// a BroadcastMessage of kind "cycle". Assignments come from the scheduler
// (scheduler.Assignment on the worker's "assign" subject). These are plain
// NATS messages, delivered at most once: a stop the launcher missed comes
// with the answer to its next heartbeat (stop_run_id), or shows as the
// refusal of its next phase.started; a run assigned and not started for
// 10 s comes with it too (assigned_run_id), and so does a cycle of the pool
// requested after the worker registered (cycle).
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
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/server/commands"
)

// Report kinds: the last tokens of bus.ReportSubject(pool, kind).
const (
	KindRegister         = "register"
	KindRunJob           = "run.job"
	KindPhaseStarted     = "phase.started"
	KindPhaseCredentials = "phase.credentials"
	KindPhaseFinished    = "phase.finished"
	KindRunFinished      = "run.finished"
	KindRunFailed        = "run.failed"
	KindRunStopped       = "run.stopped"
	KindExit             = "exit"
)

// Reply codes: what went wrong, for a launcher to act on without parsing
// the message.
const (
	CodeInvalid       = "invalid"        // a malformed body or a value the domain rejects
	CodeUnknown       = "unknown"        // no such worker in this pool, or no such run
	CodeNotYours      = "not_yours"      // the run is not assigned to this worker
	CodeIllegal       = "illegal"        // the run's lifecycle forbids the report now
	CodeStopRequested = "stop_requested" // phase.started: a stop was requested; end the run STOPPED
	CodeGone          = "gone"           // the worker was lost or exited: register again
	CodeExists        = "exists"         // register: the worker id is taken
	CodeInternal      = "internal"       // the gateway failed; retrying may help
)

// Reply answers every report (and heartbeat requests).
type Reply struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
	WorkerID string `json:"worker_id,omitempty"` // register only
	Job      *Job   `json:"job,omitempty"`       // run.job only
	// StopRunID, in the answer to a heartbeat, names the worker's run whose
	// stop was requested: a stop message the launcher missed arrives here.
	StopRunID string `json:"stop_run_id,omitempty"`
	// Cycle, in the answer to a heartbeat, says the worker's pool was
	// cycled after the worker registered: the worker must exit.
	Cycle bool `json:"cycle,omitempty"`
	// AssignedRunID, in the answer to a heartbeat, names the run assigned
	// to the worker that has not started for a while: an assignment message
	// the launcher missed arrives here.
	AssignedRunID string `json:"assigned_run_id,omitempty"`
	// RunStatus is the run's status after a phase.finished: FINISHED,
	// FAILED, STOPPED or UNCONFIRMED when the result ended the run (the
	// worker is then free), the phase's own status otherwise.
	RunStatus run.Status `json:"run_status,omitempty"`
	// StateCredentials are the phase's managed-state credentials sealed to
	// the pool's key (phase.started and phase.credentials, when the stack's
	// state is managed and the phase touches it).
	StateCredentials []byte `json:"state_credentials,omitempty"`
}

// Job is the reply to run.job: what a worker executes. Env lists the
// stack's variables; a secret one has Sealed (its value sealed to the pool's
// key) instead of Value.
type Job struct {
	RunID         string                 `json:"run_id"`
	StackID       string                 `json:"stack_id"`
	Type          run.Type               `json:"type"`
	Confirmed     bool                   `json:"confirmed,omitempty"` // apply the saved plan of a confirmed run
	Autodeploy    bool                   `json:"autodeploy,omitempty"`
	RepositoryURL string                 `json:"repository_url"`
	Commit        string                 `json:"commit"`
	ProjectRoot   string                 `json:"project_root,omitempty"`
	Tool          stack.Tool             `json:"tool"`
	Hooks         stack.Hooks            `json:"hooks"`
	TaskCommand   string                 `json:"task_command,omitempty"`
	ManagedState  bool                   `json:"managed_state,omitempty"`
	Env           []commands.JobVariable `json:"env,omitempty"`
}

// Worker message kinds: the last token of bus.WorkerSubject(pool, worker, kind).
const KindStop = "stop"

// StopMessage tells a worker to stop its run.
type StopMessage struct {
	RunID string `json:"run_id"`
	Note  string `json:"note,omitempty"`
}

// BroadcastCycle is the kind of the BroadcastMessage that asks every worker
// of a pool to exit (a cycle).
const BroadcastCycle = "cycle"

// BroadcastMessage goes to every worker of a pool.
type BroadcastMessage struct {
	Kind string `json:"kind"`
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
	// Finished, if set, is the result of the phase before (its worker_id
	// and run_id are ignored), recorded with this start in one append: a
	// phase boundary where the run goes on costs one report, not two.
	Finished *PhaseFinishedReport `json:"finished,omitempty"`
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

// RunReport is the body of run.finished, run.failed and run.stopped (and
// of run.job, which takes only the ids).
type RunReport struct {
	WorkerID string `json:"worker_id"`
	RunID    string `json:"run_id"`
	Note     string `json:"note,omitempty"`
	// Finished, if set, is the result of the run's last phase (its
	// worker_id and run_id are ignored), recorded before the run's end in
	// one append.
	Finished *PhaseFinishedReport `json:"finished,omitempty"`
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
