package protocol

import "github.com/gantryhq/gantry/domain/run"

// Report kinds: the last tokens of ReportSubject(pool, kind).
const (
	KindRegister         = "register"
	KindRunJob           = "run.job"
	KindPhaseStarted     = "phase.started"
	KindPhaseCredentials = "phase.credentials"
	KindPhaseFinished    = "phase.finished"
	KindRunFinished      = "run.finished"
	KindRunFailed        = "run.failed"
	KindRunStopped       = "run.stopped"
	// KindRunHandedBack gives a run back to the queue before it changed
	// anything (a RunReport): the worker's pool was cycled.
	KindRunHandedBack = "run.handed_back"
	KindExit          = "exit"
)

// HeaderReportID is the NATS header a launcher may send a report with: a
// string unique to the report (a UUID), the same on every retry of it. The
// server answers a repeat with the first answer, so a report whose answer
// was lost can be sent again safely.
const HeaderReportID = "Gantry-Report-Id"

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
	CodeInternal      = "internal"       // the server failed; retrying may help
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
	// state is managed and the phase touches it): a JSON StateCredentials.
	StateCredentials []byte `json:"state_credentials,omitempty"`
}

// RegisterReport is the body of a register report.
type RegisterReport struct {
	WorkerID string            `json:"worker_id,omitempty"` // generated when empty
	Metadata map[string]string `json:"metadata,omitempty"`
	// Version is the launcher's version (its binary's module version,
	// "(devel)" for a development build); `gantry pool workers` shows it
	// and flags launchers older than the server.
	Version string `json:"version,omitempty"`
}

// PhaseStartedReport is the body of a phase.started report (and of
// phase.credentials, which takes no Finished).
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
	// ChangedResources, for the PLANNING of a drift-detection run whose plan
	// has changes, are the addresses of the resources it would change.
	ChangedResources []string `json:"changed_resources,omitempty"`
	// Plan counts what the plan changes (PLANNING only), when the worker
	// could tell; servers that predate it ignore it.
	Plan *run.PlanSummary `json:"plan,omitempty"`
	// Outputs are the run's outputs (`<tool> output -json`), read after a
	// successful APPLYING or PERFORMING and recorded before its result. A
	// sensitive output carries no value, or its value sealed to the
	// server's outputs key (Job.OutputsKey) when the launcher uploads
	// sensitive outputs.
	Outputs []run.Output `json:"outputs,omitempty"`
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

// HeartbeatReport is the body of a heartbeat: what the worker is doing, so
// that the server can tell a run the worker dropped from one it still
// works on or reports. An empty body says nothing (older launchers).
type HeartbeatReport struct {
	// RunID is the run the worker executes, or whose end it still reports
	// (its report is kept until answered); "" when it has none.
	RunID string `json:"run_id,omitempty"`
	// SettledRunID is the last run whose every report was answered, or
	// given up: with RunID empty it says the worker is done with that run.
	// A server that still thinks the worker runs it fails it with a note.
	SettledRunID string `json:"settled_run_id,omitempty"`
}

// ExitReport is the body of an exit report.
type ExitReport struct {
	WorkerID string `json:"worker_id"`
	Note     string `json:"note,omitempty"`
}
