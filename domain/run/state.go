// Package run is the run aggregate: one execution against a stack at a commit,
// from QUEUED to a terminal state. Decide checks a command against the run's
// lifecycle (SPEC.md "Run lifecycle") and returns events; Apply folds them in.
package run

import (
	"slices"
	"time"
)

// Status is where a run is in its lifecycle.
type Status string

// Run statuses. QUEUED means blocked (stack lock, approval); READY means
// eligible and waiting for a worker. REPLAN_REQUESTED is an UNCONFIRMED run
// whose plan is being thrown away: it becomes READY once the saved
// workspace is deleted. DESTROYING is the APPLYING of a destroy run.
const (
	Queued          Status = "QUEUED"
	Ready           Status = "READY"
	Preparing       Status = "PREPARING"
	Initializing    Status = "INITIALIZING"
	Planning        Status = "PLANNING"
	Unconfirmed     Status = "UNCONFIRMED"
	ReplanRequested Status = "REPLAN_REQUESTED"
	Confirmed       Status = "CONFIRMED"
	PreparingApply  Status = "PREPARING_APPLY"
	Applying        Status = "APPLYING"
	Destroying      Status = "DESTROYING"
	Performing      Status = "PERFORMING"
	Finished        Status = "FINISHED"
	Failed          Status = "FAILED"
	Discarded       Status = "DISCARDED"
	Stopped         Status = "STOPPED"
	Canceled        Status = "CANCELED"
	Skipped         Status = "SKIPPED"
)

// Statuses lists every status in lifecycle order.
func Statuses() []Status {
	return []Status{Queued, Ready, Preparing, Initializing, Planning, Unconfirmed, ReplanRequested, Confirmed,
		PreparingApply, Applying, Destroying, Performing, Finished, Failed, Discarded, Stopped, Canceled, Skipped}
}

// Terminal reports whether no command can move a run out of st.
func (st Status) Terminal() bool {
	switch st {
	case Finished, Failed, Discarded, Stopped, Canceled, Skipped:
		return true
	}
	return false
}

// Type is the kind of run.
type Type string

// Run types.
const (
	Tracked  Type = "TRACKED"  // may change infrastructure; takes the stack lock
	Proposed Type = "PROPOSED" // plan only (pull request, drift detection)
	Task     Type = "TASK"     // an arbitrary command in the stack's workspace; takes the stack lock
)

// Valid reports whether t is a known run type.
func (t Type) Valid() bool { return t == Tracked || t == Proposed || t == Task }

// Phase is a step a worker executes. Each phase has the status of the same name.
type Phase string

// Worker phases.
const (
	PhasePreparing      Phase = "PREPARING"
	PhaseInitializing   Phase = "INITIALIZING"
	PhasePlanning       Phase = "PLANNING"
	PhasePreparingApply Phase = "PREPARING_APPLY"
	PhaseApplying       Phase = "APPLYING"
	PhaseDestroying     Phase = "DESTROYING" // the APPLYING of a destroy run
	PhasePerforming     Phase = "PERFORMING"
)

// Phases lists every phase.
func Phases() []Phase {
	return []Phase{PhasePreparing, PhaseInitializing, PhasePlanning, PhasePreparingApply, PhaseApplying, PhaseDestroying, PhasePerforming}
}

// Valid reports whether p is a known phase.
func (p Phase) Valid() bool { return slices.Contains(Phases(), p) }

// Status is the run status while p is under way.
func (p Phase) Status() Status { return Status(p) }

// Applies reports whether p applies a saved plan: APPLYING, or DESTROYING
// for a destroy run. Both change infrastructure and write state.
func (p Phase) Applies() bool { return p == PhaseApplying || p == PhaseDestroying }

// HistoryEntry is one status change: what the run view lists.
type HistoryEntry struct {
	Status Status
	At     time.Time
	Actor  string
	Note   string
}

// PhaseResult is what a worker reported at the end of a phase.
type PhaseResult struct {
	Phase      Phase
	ExitCode   int
	Duration   time.Duration
	HasChanges bool
	At         time.Time
}

// State is a run as its events made it. The zero value is a run that does not
// exist yet. Copies are independent: Apply never writes into memory a copy
// shares.
type State struct {
	id            string
	stackID       string
	typ           Type
	commit        string
	taskCommand   string
	drift         bool
	autodeploy    bool
	destroy       bool
	retryOf       string
	triggeredBy   string
	deliveryID    string
	status        Status
	workerID      string
	poolID        string
	pools         []string // every pool the run was assigned to, once each, the latest assignment's last
	stopRequestBy string
	stopNote      string // why the stop was requested
	phaseDone     bool   // the current phase's result has been reported
	hasChanges    bool
	plan          *PlanSummary // never shared with another State: Apply stores a fresh copy
	phases        []PhaseResult
	history       []HistoryEntry
	// outputsRecorded: the run's outputs were recorded (once per run).
	outputsRecorded bool
	outputs         []Output
}

// Exists reports whether the run has been triggered.
func (s State) Exists() bool { return s.id != "" }

// ID is the run id ("run_…").
func (s State) ID() string { return s.id }

// StackID is the stack the run executes against.
func (s State) StackID() string { return s.stackID }

// Type is the run type.
func (s State) Type() Type { return s.typ }

// Status is the current lifecycle status; empty if the run does not exist.
func (s State) Status() Status { return s.status }

// IsTerminal reports whether the run has ended.
func (s State) IsTerminal() bool { return s.status.Terminal() }

// Commit is the full commit SHA the run executes.
func (s State) Commit() string { return s.commit }

// TaskCommand is the command of a TASK run.
func (s State) TaskCommand() string { return s.taskCommand }

// DriftDetection reports whether this PROPOSED run was triggered by drift
// detection (scheduled last).
func (s State) DriftDetection() bool { return s.drift }

// Autodeploy reports whether a TRACKED run applies without confirmation.
func (s State) Autodeploy() bool { return s.autodeploy }

// Destroy reports whether this TRACKED run destroys the stack's resources:
// it plans with -destroy, and its apply phase is DESTROYING.
func (s State) Destroy() bool { return s.destroy }

// ApplyPhase is the phase that applies the run's plan: DESTROYING for a
// destroy run, APPLYING otherwise.
func (s State) ApplyPhase() Phase {
	if s.destroy {
		return PhaseDestroying
	}
	return PhaseApplying
}

// RetryOf is the run this run retries, "" when it is not a retry.
func (s State) RetryOf() string { return s.retryOf }

// TriggeredBy is the actor who triggered the run.
func (s State) TriggeredBy() string { return s.triggeredBy }

// DeliveryID is the webhook delivery that queued the run, "" if none did:
// such a run reports its state to the commit.
func (s State) DeliveryID() string { return s.deliveryID }

// TriggeredAt is when the run was triggered.
func (s State) TriggeredAt() time.Time {
	if len(s.history) == 0 {
		return time.Time{}
	}
	return s.history[0].At
}

// WorkerID is the worker holding the run, "" when none does (before
// assignment, while UNCONFIRMED, and after the run ends).
func (s State) WorkerID() string { return s.workerID }

// PoolID is the pool of the worker holding the run, "" when none does.
func (s State) PoolID() string { return s.poolID }

// AssignedPools lists every pool the run was ever assigned to, once each,
// the pool of its latest assignment last: the pools whose workers may have
// written its logs or its saved workspace.
func (s State) AssignedPools() []string { return slices.Clone(s.pools) }

// StopRequested reports whether a user asked to stop the run, and who.
func (s State) StopRequested() (by string, ok bool) { return s.stopRequestBy, s.stopRequestBy != "" }

// StopNote is the note given with the stop request, "" if none.
func (s State) StopNote() string { return s.stopNote }

// Plan returns what the last plan changes, if its worker reported it.
func (s State) Plan() (PlanSummary, bool) {
	if s.plan == nil {
		return PlanSummary{}, false
	}
	return *s.plan, true
}

// HasChanges reports whether the plan found changes.
func (s State) HasChanges() bool { return s.hasChanges }

// PhaseResults lists the results workers reported, in order.
func (s State) PhaseResults() []PhaseResult { return slices.Clone(s.phases) }

// History lists every status change, oldest first.
func (s State) History() []HistoryEntry { return slices.Clone(s.history) }
