package run

import (
	"fmt"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// MaxNoteLength bounds the free-text notes of commands.
const MaxNoteLength = 2000

// MaxTaskCommandLength bounds a TASK run's command.
const MaxTaskCommandLength = 4096

// Decide returns the events c causes on the run s, or an error: a
// *domain.ValidationError for bad input, domain.ErrNotFound for a run that
// does not exist, domain.ErrAlreadyExists for triggering an existing one, and
// an *IllegalTransitionError naming the current status for anything the
// lifecycle forbids. No events and no error means c changes nothing (a
// repeated Assign, Stop). s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Trigger:
		return trigger(s, c)
	case MarkReady:
		return s.markReady(c)
	case Assign:
		return s.assign(c)
	case Unassign:
		return s.unassign(c)
	case HandBack:
		return s.handBack(c)
	case StartPhase:
		return s.startPhase(c)
	case PhaseFinished:
		return s.phaseFinished(c)
	case Confirm:
		return s.confirm(c)
	case Replan:
		return s.replan(c)
	case Discard:
		return s.discard(c)
	case Cancel:
		return s.cancel(c)
	case Skip:
		return s.skip(c)
	case Stop:
		return s.stop(c)
	case MarkStopped:
		return s.markStopped(c)
	case Fail:
		return s.fail(c)
	case Finish:
		return s.finish(c)
	case RecordOutputs:
		return s.recordOutputs(c)
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown run command %T", c)}
}

func trigger(s State, c Trigger) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", c.RunID))
	p.Check(ids.Stack.Validate("stack_id", c.StackID))
	if !c.Type.Valid() {
		p.Addf("type", "must be %s, %s or %s, not %q", Tracked, Proposed, Task, c.Type)
	}
	commit, err := normalizeCommit(c.Commit)
	p.Check(err)
	if c.Type == Task {
		p.CheckText("task_command", c.TaskCommand, MaxTaskCommandLength, true)
	} else if c.TaskCommand != "" {
		p.Add("task_command", "only TASK runs have a command")
	}
	if c.Drift && c.Type != Proposed {
		p.Add("drift", "only PROPOSED runs detect drift")
	}
	if c.Autodeploy && c.Type != Tracked {
		p.Add("autodeploy", "only TRACKED runs apply")
	}
	if c.Destroy && c.Type != Tracked {
		p.Add("destroy", "only TRACKED runs destroy")
	}
	if c.RetryOf != "" {
		p.Check(ids.Run.Validate("retry_of", c.RetryOf))
		if c.RetryOf == c.RunID {
			p.Add("retry_of", "a run cannot retry itself")
		}
	}
	if c.DeliveryID != "" {
		p.Check(ids.Delivery.Validate("delivery_id", c.DeliveryID))
	}
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, fmt.Errorf("run %s: %w", s.id, domain.ErrAlreadyExists)
	}
	return []Event{RunQueued{
		RunID: c.RunID, StackID: c.StackID, Type: c.Type, Commit: commit, TaskCommand: c.TaskCommand,
		Drift: c.Drift, Autodeploy: c.Autodeploy, Destroy: c.Destroy, RetryOf: c.RetryOf, At: c.At, Actor: c.Actor, DeliveryID: c.DeliveryID,
	}}, nil
}

// normalizeCommit accepts only full commit ids: an abbreviated one can become
// ambiguous later, and a run must name exactly one commit forever.
func normalizeCommit(sha string) (string, error) {
	if len(sha) != 40 && len(sha) != 64 {
		return "", &domain.ValidationError{Field: "commit", Problem: "must be a full 40 or 64 character hex commit id"}
	}
	for _, r := range sha {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return "", &domain.ValidationError{Field: "commit", Problem: fmt.Sprintf("%q is not hexadecimal", sha)}
		}
	}
	return strings.ToLower(sha), nil
}

// precheck validates the command's origin on top of the problems already
// found, then requires that the run exists and has not ended.
func (s State) precheck(cmd string, actor string, at time.Time, p domain.Problems) error {
	p.CheckOrigin(actor, at)
	if err := p.Err(); err != nil {
		return err
	}
	if !s.Exists() {
		return fmt.Errorf("run: %w", domain.ErrNotFound)
	}
	if s.status.Terminal() {
		return s.illegal(cmd, "")
	}
	return nil
}

func (s State) illegal(cmd, reason string) error {
	return &IllegalTransitionError{From: s.status, Command: cmd, Reason: reason}
}

// in reports whether the run's status is one of sts.
func (s State) in(sts ...Status) bool {
	for _, st := range sts {
		if s.status == st {
			return true
		}
	}
	return false
}

func checkNote(note string) domain.Problems {
	var p domain.Problems
	p.CheckText("note", note, MaxNoteLength, false)
	return p
}

func (s State) markReady(c MarkReady) ([]Event, error) {
	const cmd = "MarkReady"
	if err := s.precheck(cmd, c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if !s.in(Queued, ReplanRequested) {
		return nil, s.illegal(cmd, "")
	}
	return []Event{RunReady{At: c.At, Actor: c.Actor}}, nil
}

func (s State) assign(c Assign) ([]Event, error) {
	const cmd = "Assign"
	var p domain.Problems
	p.Check(ids.Worker.Validate("worker_id", c.WorkerID))
	p.Check(ids.WorkerPool.Validate("pool_id", c.PoolID))
	if err := s.precheck(cmd, c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if !s.in(Ready, Confirmed) {
		return nil, s.illegal(cmd, "")
	}
	switch s.workerID {
	case "":
	case c.WorkerID:
		return nil, nil
	default:
		return nil, s.illegal(cmd, "already assigned to "+s.workerID)
	}
	return []Event{RunAssigned{WorkerID: c.WorkerID, PoolID: c.PoolID, At: c.At, Actor: c.Actor}}, nil
}

func (s State) unassign(c Unassign) ([]Event, error) {
	const cmd = "Unassign"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	if !s.in(Ready, Confirmed) {
		return nil, s.illegal(cmd, "")
	}
	if s.workerID == "" {
		return nil, s.illegal(cmd, "no worker is assigned")
	}
	return []Event{RunUnassigned{WorkerID: s.workerID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

// handBackTo says where each status a run can be handed back from goes.
var handBackTo = map[Status]Status{
	Preparing: Ready, Initializing: Ready, Planning: Ready, PreparingApply: Confirmed,
}

func (s State) handBack(c HandBack) ([]Event, error) {
	const cmd = "HandBack"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	to, ok := handBackTo[s.status]
	if !ok {
		return nil, s.illegal(cmd, "")
	}
	if s.stopRequestBy != "" {
		// The user asked for the run to stop: it stops rather than runs again.
		return []Event{RunStopped{StackID: s.stackID, WorkerID: s.workerID,
			Note: "stop requested by " + s.stopRequestBy, At: c.At, Actor: c.Actor}}, nil
	}
	return []Event{RunHandedBack{WorkerID: s.workerID, To: to, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

// phaseOrder says which status each phase starts from, and whether a worker
// must have been assigned just before (the first phase on a worker).
var phaseOrder = map[Phase]struct {
	from      Status
	newWorker bool
}{
	PhasePreparing:      {Ready, true},
	PhaseInitializing:   {Preparing, false},
	PhasePlanning:       {Initializing, false},
	PhasePerforming:     {Initializing, false},
	PhasePreparingApply: {Confirmed, true},
	PhaseApplying:       {PreparingApply, false},
	PhaseDestroying:     {PreparingApply, false},
}

func (s State) startPhase(c StartPhase) ([]Event, error) {
	cmd := "StartPhase(" + string(c.Phase) + ")"
	var p domain.Problems
	if !c.Phase.Valid() {
		p.Addf("phase", "unknown phase %q", c.Phase)
	}
	if err := s.precheck(cmd, c.Actor, c.At, p); err != nil {
		return nil, err
	}
	order := phaseOrder[c.Phase]
	switch {
	case s.status != order.from:
		return nil, s.illegal(cmd, "")
	case order.newWorker && s.workerID == "":
		return nil, s.illegal(cmd, "no worker is assigned")
	case c.Phase == PhasePlanning && s.typ == Task:
		return nil, s.illegal(cmd, "a TASK run performs its command instead of planning")
	case c.Phase == PhasePerforming && s.typ != Task:
		return nil, s.illegal(cmd, "only TASK runs perform a command")
	case c.Phase.Applies() && c.Phase != s.ApplyPhase():
		return nil, s.illegal(cmd, "the plan of this run is applied in "+string(s.ApplyPhase()))
	case s.stopRequestBy != "":
		return nil, s.illegal(cmd, ErrStopPending.Error())
	}
	return []Event{RunPhaseStarted{Phase: c.Phase, At: c.At, Actor: c.Actor}}, nil
}

func (s State) phaseFinished(c PhaseFinished) ([]Event, error) {
	cmd := "PhaseFinished(" + string(c.Phase) + ")"
	var p domain.Problems
	if !c.Phase.Valid() {
		p.Addf("phase", "unknown phase %q", c.Phase)
	}
	if c.Duration < 0 {
		p.Add("duration", "must not be negative")
	}
	if c.HasChanges && c.Phase != PhasePlanning {
		p.Add("has_changes", "only PLANNING finds changes")
	}
	if c.Plan != nil {
		if c.Phase != PhasePlanning {
			p.Add("plan", "only PLANNING has a plan")
		}
		if c.Plan.Add < 0 || c.Plan.Change < 0 || c.Plan.Destroy < 0 {
			p.Addf("plan", "counts must not be negative, got %s", c.Plan)
		}
	}
	if err := s.precheck(cmd, c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if s.status != c.Phase.Status() {
		return nil, s.illegal(cmd, "")
	}
	if s.phaseDone {
		return nil, s.illegal(cmd, "the phase already reported its result")
	}
	var plan *PlanSummary
	if c.Plan != nil {
		// A copy: the event must not share memory with the command.
		p := *c.Plan
		plan = &p
	}
	events := []Event{RunPhaseFinished{
		Phase: c.Phase, ExitCode: c.ExitCode, Duration: c.Duration, HasChanges: c.HasChanges, Note: c.Note, Plan: plan, At: c.At, Actor: c.Actor,
	}}
	switch {
	case s.stopRequestBy != "":
		// The exit code is whatever the interrupted process returned: the
		// user's request, not the code, decides the outcome.
		return append(events, RunStopped{StackID: s.stackID, WorkerID: s.workerID,
			Note: "stop requested by " + s.stopRequestBy, At: c.At, Actor: c.Actor}), nil
	case c.ExitCode != 0:
		note := fmt.Sprintf("%s exited with code %d", c.Phase, c.ExitCode)
		if c.Note != "" {
			note = fmt.Sprintf("%s failed: %s (exit code %d)", c.Phase, c.Note, c.ExitCode)
		}
		return append(events, RunFailed{StackID: s.stackID, WorkerID: s.workerID, Note: note, At: c.At, Actor: c.Actor}), nil
	case c.Phase != PhasePlanning:
		// The run moves on with the next StartPhase, or Finish after the last phase.
		return events, nil
	case s.typ == Proposed || !c.HasChanges:
		return append(events, RunFinished{StackID: s.stackID, WorkerID: s.workerID, At: c.At, Actor: c.Actor}), nil
	case s.autodeploy:
		// Autodeploy applies on the same worker, with the plan it just made.
		return append(events, RunPhaseStarted{Phase: s.ApplyPhase(), At: c.At, Actor: c.Actor}), nil
	default:
		return append(events, RunUnconfirmed{WorkerID: s.workerID, At: c.At, Actor: c.Actor}), nil
	}
}

func (s State) confirm(c Confirm) ([]Event, error) {
	const cmd = "Confirm"
	if err := s.precheck(cmd, c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if s.status != Unconfirmed {
		return nil, s.illegal(cmd, "")
	}
	return []Event{RunConfirmed{At: c.At, Actor: c.Actor}}, nil
}

func (s State) replan(c Replan) ([]Event, error) {
	const cmd = "Replan"
	if err := s.precheck(cmd, c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	switch s.status {
	case Unconfirmed:
		return []Event{RunReplanRequested{At: c.At, Actor: c.Actor}}, nil
	case ReplanRequested:
		return nil, nil
	}
	return nil, s.illegal(cmd, "")
}

func (s State) discard(c Discard) ([]Event, error) {
	const cmd = "Discard"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	if !s.in(Queued, Ready, Unconfirmed, ReplanRequested) {
		return nil, s.illegal(cmd, "")
	}
	return []Event{RunDiscarded{StackID: s.stackID, WorkerID: s.workerID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) cancel(c Cancel) ([]Event, error) {
	const cmd = "Cancel"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	if !s.in(Queued, Ready) {
		return nil, s.illegal(cmd, "")
	}
	return []Event{RunCanceled{StackID: s.stackID, WorkerID: s.workerID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) skip(c Skip) ([]Event, error) {
	const cmd = "Skip"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	if !s.in(Queued, Ready) {
		return nil, s.illegal(cmd, "")
	}
	return []Event{RunSkipped{StackID: s.stackID, WorkerID: s.workerID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

// stoppable lists the statuses a user may stop: a worker is running a phase
// that can be interrupted without leaving infrastructure half-changed.
// CONFIRMED and the apply phases (APPLYING, DESTROYING) cannot be stopped.
var stoppable = []Status{Preparing, Initializing, Planning, Performing}

func (s State) stop(c Stop) ([]Event, error) {
	const cmd = "Stop"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	if !s.in(stoppable...) {
		return nil, s.illegal(cmd, "")
	}
	if s.stopRequestBy != "" {
		return nil, nil
	}
	return []Event{RunStopRequested{WorkerID: s.workerID, PoolID: s.poolID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) markStopped(c MarkStopped) ([]Event, error) {
	const cmd = "MarkStopped"
	if err := s.precheck(cmd, c.Actor, c.At, checkNote(c.Note)); err != nil {
		return nil, err
	}
	if !s.in(stoppable...) {
		return nil, s.illegal(cmd, "")
	}
	if s.stopRequestBy == "" {
		return nil, s.illegal(cmd, "no stop was requested")
	}
	note := c.Note
	if note == "" {
		note = "stop requested by " + s.stopRequestBy
	}
	return []Event{RunStopped{StackID: s.stackID, WorkerID: s.workerID, Note: note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) fail(c Fail) ([]Event, error) {
	var p domain.Problems
	p.CheckText("note", c.Note, MaxNoteLength, true)
	if err := s.precheck("Fail", c.Actor, c.At, p); err != nil {
		return nil, err
	}
	return []Event{RunFailed{StackID: s.stackID, WorkerID: s.workerID, Note: c.Note, At: c.At, Actor: c.Actor}}, nil
}

func (s State) finish(c Finish) ([]Event, error) {
	const cmd = "Finish"
	if err := s.precheck(cmd, c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if !s.in(Applying, Destroying, Performing) {
		return nil, s.illegal(cmd, "")
	}
	return []Event{RunFinished{StackID: s.stackID, WorkerID: s.workerID, At: c.At, Actor: c.Actor}}, nil
}
