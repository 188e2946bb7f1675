package run

import "time"

// Event is a fact about a run. Type names are stable strings stored in the
// event store; all events are schema version 1.
type Event interface{ EventType() string }

// RunQueued: a run was triggered. It is the first event of every run.
type RunQueued struct {
	RunID       string    `json:"run_id"`
	StackID     string    `json:"stack_id"`
	Type        Type      `json:"type"`
	Commit      string    `json:"commit"`
	TaskCommand string    `json:"task_command,omitempty"`
	Drift       bool      `json:"drift,omitempty"`
	Autodeploy  bool      `json:"autodeploy,omitempty"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`
	Destroy     bool      `json:"destroy,omitempty"`  // a TRACKED run that destroys
	RetryOf     string    `json:"retry_of,omitempty"` // the run this one retries
	DeliveryID  string    `json:"delivery_id,omitempty"`
}

// RunReady: nothing blocks the run any more; it waits for a worker.
type RunReady struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// RunAssigned: a worker was given the run.
type RunAssigned struct {
	WorkerID string    `json:"worker_id"`
	PoolID   string    `json:"pool_id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunUnassigned: the run was handed back before its worker started a phase.
type RunUnassigned struct {
	WorkerID string    `json:"worker_id"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunHandedBack: the run's worker went away (its pool was cycled) before
// the run changed anything; the run waits for a worker again, in status To
// (READY, or CONFIRMED when it was preparing to apply a confirmed plan).
type RunHandedBack struct {
	WorkerID string    `json:"worker_id"`
	To       Status    `json:"to"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunPhaseStarted: the worker began a phase; the run's status is the phase.
type RunPhaseStarted struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// RunPhaseFinished: the worker reported a phase's result.
type RunPhaseFinished struct {
	Phase      Phase         `json:"phase"`
	ExitCode   int           `json:"exit_code"`
	Duration   time.Duration `json:"duration_ns"`
	HasChanges bool          `json:"has_changes,omitempty"`
	Note       string        `json:"note,omitempty"`
	// Plan is what the plan changes (PLANNING only), when the worker
	// could tell; events recorded before workers reported it have none.
	Plan  *PlanSummary `json:"plan,omitempty"`
	At    time.Time    `json:"at"`
	Actor string       `json:"actor"`
}

// RunUnconfirmed: the plan has changes and waits for a confirmation. The
// worker is released (it saved the workspace); the stack lock is kept.
type RunUnconfirmed struct {
	WorkerID string    `json:"worker_id,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunConfirmed: a user approved the plan.
type RunConfirmed struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// RunReplanRequested: a user threw the plan of an UNCONFIRMED run away; the
// run plans again once its saved workspace is deleted (RunReady).
type RunReplanRequested struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// RunStopRequested: a user asked the run to stop; the worker is told.
type RunStopRequested struct {
	WorkerID string    `json:"worker_id,omitempty"`
	PoolID   string    `json:"pool_id,omitempty"` // the worker's pool, to reach it on its pool's subjects
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// The terminal events carry the stack and the worker the run held, so the
// consumers releasing the stack lock and the worker need not load the run.

// RunFinished: the run ended successfully (terminal).
type RunFinished struct {
	StackID  string    `json:"stack_id"`
	WorkerID string    `json:"worker_id,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunFailed: the run ended in error (terminal).
type RunFailed struct {
	StackID  string    `json:"stack_id"`
	WorkerID string    `json:"worker_id,omitempty"`
	Note     string    `json:"note"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunDiscarded: the run was rejected before it started, or its plan was (terminal).
type RunDiscarded struct {
	StackID  string    `json:"stack_id"`
	WorkerID string    `json:"worker_id,omitempty"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunStopped: the worker stopped the run on request (terminal).
type RunStopped struct {
	StackID  string    `json:"stack_id"`
	WorkerID string    `json:"worker_id,omitempty"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunCanceled: the run was withdrawn before it started (terminal).
type RunCanceled struct {
	StackID  string    `json:"stack_id"`
	WorkerID string    `json:"worker_id,omitempty"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// RunSkipped: the run was not needed any more and never started (terminal).
type RunSkipped struct {
	StackID  string    `json:"stack_id"`
	WorkerID string    `json:"worker_id,omitempty"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (RunQueued) EventType() string          { return "RunQueued" }
func (RunReady) EventType() string           { return "RunReady" }
func (RunAssigned) EventType() string        { return "RunAssigned" }
func (RunUnassigned) EventType() string      { return "RunUnassigned" }
func (RunPhaseStarted) EventType() string    { return "RunPhaseStarted" }
func (RunPhaseFinished) EventType() string   { return "RunPhaseFinished" }
func (RunUnconfirmed) EventType() string     { return "RunUnconfirmed" }
func (RunConfirmed) EventType() string       { return "RunConfirmed" }
func (RunReplanRequested) EventType() string { return "RunReplanRequested" }
func (RunStopRequested) EventType() string   { return "RunStopRequested" }
func (RunFinished) EventType() string        { return "RunFinished" }
func (RunFailed) EventType() string          { return "RunFailed" }
func (RunDiscarded) EventType() string       { return "RunDiscarded" }
func (RunStopped) EventType() string         { return "RunStopped" }
func (RunCanceled) EventType() string        { return "RunCanceled" }
func (RunSkipped) EventType() string         { return "RunSkipped" }
func (RunHandedBack) EventType() string      { return "RunHandedBack" }

// Events returns a zero value of every run event type, for registration in
// the event store.
func Events() []Event {
	return []Event{
		RunQueued{}, RunReady{}, RunAssigned{}, RunUnassigned{}, RunHandedBack{}, RunPhaseStarted{},
		RunPhaseFinished{}, RunUnconfirmed{}, RunConfirmed{}, RunReplanRequested{}, RunStopRequested{},
		RunFinished{}, RunFailed{}, RunDiscarded{}, RunStopped{}, RunCanceled{}, RunSkipped{},
		RunOutputsRecorded{},
	}
}
