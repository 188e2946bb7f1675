package projections_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
)

// sim decides commands on in-memory aggregates with the domain's Decide and
// Apply, the way the command layer does, and records each unit of work as
// one atomic append (a step). Everything is deterministic: ids come from a
// counter, times from a clock that ticks once per command, so the same
// calls give the same events, which can be appended to several databases.
type sim struct {
	name     string // keeps the ids of concurrent sims apart
	clock    time.Time
	seq      int
	stacks   map[string]*stack.State
	runs     map[string]*run.State
	pools    map[string]*workerpool.State
	workers  map[string]*worker.State
	apikeys  map[string]*apikey.State
	versions map[string]int64
	steps    [][]eventstore.Batch
	events   int
	err      error
}

var simEpoch = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

func newSim(name string) *sim {
	return &sim{
		name: name, clock: simEpoch,
		stacks: map[string]*stack.State{}, runs: map[string]*run.State{},
		pools: map[string]*workerpool.State{}, workers: map[string]*worker.State{},
		apikeys:  map[string]*apikey.State{},
		versions: map[string]int64{},
	}
}

func (s *sim) now() time.Time {
	s.clock = s.clock.Add(time.Second)
	return s.clock
}

func (s *sim) id(prefix ids.Prefix) string {
	s.seq++
	return fmt.Sprintf("%s_%s%07d", prefix, s.name, s.seq)
}

func (s *sim) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// take returns the steps recorded so far and forgets them.
func (s *sim) take() [][]eventstore.Batch {
	out := s.steps
	s.steps = nil
	return out
}

// unit is one atomic append under construction.
type unit struct {
	s       *sim
	order   []string
	batches map[string]*eventstore.Batch
}

func (s *sim) begin() *unit { return &unit{s: s, batches: map[string]*eventstore.Batch{}} }

// reserve puts the stream's batch at this place in the append, whenever its
// events come: the command layer orders batches by when it loaded each
// aggregate, not by when it decided.
func (u *unit) reserve(stream eventstore.Stream) {
	if u.batches[stream.ID] == nil {
		u.batches[stream.ID] = &eventstore.Batch{Stream: stream, Expected: u.s.versions[stream.ID]}
		u.order = append(u.order, stream.ID)
	}
}

func (u *unit) add(stream eventstore.Stream, events []any) {
	if len(events) == 0 {
		return
	}
	b := u.batches[stream.ID]
	if b == nil {
		b = &eventstore.Batch{Stream: stream, Expected: u.s.versions[stream.ID]}
		u.batches[stream.ID] = b
		u.order = append(u.order, stream.ID)
	}
	b.Events = append(b.Events, events...)
}

// commit records the unit as a step (if it has events).
func (u *unit) commit() {
	var step []eventstore.Batch
	for _, id := range u.order {
		b := u.batches[id]
		if len(b.Events) == 0 {
			continue
		}
		step = append(step, *b)
		u.s.versions[id] += int64(len(b.Events))
		u.s.events += len(b.Events)
	}
	if len(step) > 0 {
		u.s.steps = append(u.s.steps, step)
	}
}

// decideOn decides c on the aggregate id, applies the events to it and adds
// them to the unit.
func decideOn[S any, C any, E any](u *unit, typ, id string, states map[string]*S, decide func(S, C) ([]E, error), apply func(*S, E), c C) []E {
	st := states[id]
	if st == nil {
		st = new(S)
		states[id] = st
	}
	events, err := decide(*st, c)
	if err != nil {
		u.s.fail(fmt.Errorf("%s %s: %T: %w", typ, id, c, err))
		return nil
	}
	out := make([]any, len(events))
	for i, e := range events {
		apply(st, e)
		out[i] = e
	}
	u.add(eventstore.Stream{Type: typ, ID: id}, out)
	return events
}

func (u *unit) stack(id string, c stack.Command) []stack.Event {
	return decideOn(u, eventstore.StreamStack, id, u.s.stacks, stack.Decide, (*stack.State).Apply, c)
}

func (u *unit) run(id string, c run.Command) []run.Event {
	return decideOn(u, eventstore.StreamRun, id, u.s.runs, run.Decide, (*run.State).Apply, c)
}

func (u *unit) pool(id string, c workerpool.Command) []workerpool.Event {
	return decideOn(u, eventstore.StreamWorkerPool, id, u.s.pools, workerpool.Decide, (*workerpool.State).Apply, c)
}

func (u *unit) worker(id string, c worker.Command) []worker.Event {
	return decideOn(u, eventstore.StreamWorker, id, u.s.workers, worker.Decide, (*worker.State).Apply, c)
}

func (u *unit) apikey(id string, c apikey.Command) []apikey.Event {
	return decideOn(u, eventstore.StreamAPIKey, id, u.s.apikeys, apikey.Decide, (*apikey.State).Apply, c)
}

// fakeCert is a certificate the domain accepts; its PEM does not parse.
func fakeCert(n int) workerpool.Certificate {
	return workerpool.Certificate{
		PEM:          "-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n",
		Serial:       fmt.Sprintf("%d", 1000+n),
		Fingerprint:  fmt.Sprintf("%064x", 0xabc000+n),
		KeyAlgorithm: workerpool.RSA, KeyBits: 4096,
	}
}

// createPool records a new private pool (or the public one for ids.PublicPool).
func (s *sim) createPool(id, name string) {
	u := s.begin()
	u.pool(id, workerpool.Create{PoolID: id, Name: name, Public: id == ids.PublicPool, Labels: []string{"env:test"},
		Certificate: fakeCert(s.seq), SecretHash: fmt.Sprintf("hash-%s", id), Actor: "user:admin", At: s.now()})
	u.commit()
}

const commitSHA = "0123456789abcdef0123456789abcdef01234567"

// lane is a stack with its own worker: a sequence of runs through their
// lifecycles, as the command layer and the workers would record them.
type lane struct {
	*sim
	stackID, poolID, workerID string
	user                      string
	autodeploy                bool
}

// newLane creates a stack on poolID and registers a worker in that pool.
func (s *sim) newLane(name, poolID string) *lane {
	l := &lane{sim: s, stackID: s.id(ids.Stack), poolID: poolID, workerID: s.id(ids.Worker), user: "user:" + name}
	u := s.begin()
	u.stack(l.stackID, stack.Create{StackID: l.stackID, Settings: stack.Settings{
		Name: name, RepositoryURL: "https://git.example.com/infra/" + name + ".git", WorkerPoolID: poolID,
		Labels: []string{"team:platform"}, Hooks: stack.Hooks{BeforeInit: []string{"echo init"}},
	}, ManagedState: true, Actor: l.user, At: s.now()})
	u.commit()
	u = s.begin()
	u.worker(l.workerID, worker.Register{WorkerID: l.workerID, PoolID: poolID,
		Metadata: map[string]string{"host": name + "-host"}, LauncherVersion: "v1.4.0", Actor: "launcher", At: s.now()})
	u.commit()
	return l
}

// trigger queues a run; a tracked run or task joins the lock queue and, if
// the lock is free, takes it and becomes READY at once.
func (l *lane) trigger(typ run.Type, drift bool) string {
	id := l.id(ids.Run)
	at := l.now()
	cmd := run.Trigger{RunID: id, StackID: l.stackID, Type: typ, Commit: commitSHA, Drift: drift,
		Autodeploy: typ == run.Tracked && l.autodeploy, Actor: l.user, At: at}
	if typ == run.Task {
		cmd.TaskCommand = "terraform state list"
	}
	u := l.begin()
	// As the command layer does: the stack is loaded first, so its events
	// come first in the log, before the run's RunQueued.
	u.reserve(eventstore.Stream{Type: eventstore.StreamStack, ID: l.stackID})
	u.run(id, cmd)
	if typ == run.Proposed {
		u.run(id, run.MarkReady{Actor: l.user, At: at})
	} else {
		u.stack(l.stackID, stack.EnqueueRun{RunID: id, RunType: typ, Actor: l.user, At: at})
		l.handOn(u, at)
	}
	u.commit()
	return id
}

// handOn gives a free run lock to the head of the queue and makes it READY.
func (l *lane) handOn(u *unit, at time.Time) {
	st := l.stacks[l.stackID]
	if st.LockHolder() != "" || len(st.Queue()) == 0 {
		return
	}
	head := st.Queue()[0]
	if ml, locked := st.ManualLock(); locked && ml.By != l.runs[head].TriggeredBy() {
		return // the head waits for the manual lock's holder to unlock
	}
	u.stack(l.stackID, stack.AcquireLock{RunID: head, Actor: "system:commands", At: at})
	if l.runs[head].Status() == run.Queued {
		u.run(head, run.MarkReady{Actor: "system:commands", At: at})
	}
}

// settle lets go of what an ended (or unconfirmed) run held.
func (l *lane) settle(u *unit, id string, at time.Time) {
	r := l.runs[id]
	if (r.IsTerminal() || r.Status() == run.Unconfirmed) && l.workers[l.workerID].RunID() == id {
		u.worker(l.workerID, worker.RunFinished{RunID: id, Actor: l.workerID, At: at})
	}
	if r.IsTerminal() && r.Type() != run.Proposed {
		u.stack(l.stackID, stack.ReleaseLock{RunID: id, Actor: "system:commands", At: at})
		l.handOn(u, at)
	}
}

func (l *lane) do(id string, c run.Command) {
	u := l.begin()
	u.run(id, c)
	l.settle(u, id, l.clock)
	u.commit()
}

func (l *lane) assign(id string) {
	at := l.now()
	u := l.begin()
	u.run(id, run.Assign{WorkerID: l.workerID, PoolID: l.poolID, Actor: "system:scheduler", At: at})
	u.worker(l.workerID, worker.AssignRun{RunID: id, Actor: "system:scheduler", At: at})
	u.commit()
}

func (l *lane) start(id string, p run.Phase) {
	l.do(id, run.StartPhase{Phase: p, Actor: l.workerID, At: l.now()})
}

// finish reports the phase's result; a plan with changes comes with a
// summary (one without, as from workers that predate summaries, has none).
func (l *lane) finish(id string, p run.Phase, exit int, changes bool) {
	var plan *run.PlanSummary
	if changes {
		plan = &run.PlanSummary{Add: 2, Change: 1}
	}
	l.do(id, run.PhaseFinished{Phase: p, ExitCode: exit, Duration: 3 * time.Second, HasChanges: changes, Plan: plan, Actor: l.workerID, At: l.now()})
}

// simOutputs are the outputs of scenario 1's apply.
var simOutputs = []run.Output{
	{Name: "id", Type: json.RawMessage(`"string"`), Value: json.RawMessage(`"i-123"`)},
	{Name: "password", Sensitive: true, Type: json.RawMessage(`"string"`), Sealed: []byte("sealed to the server")},
	{Name: "token", Sensitive: true},
}

func (l *lane) phase(id string, p run.Phase) {
	l.start(id, p)
	l.finish(id, p, 0, false)
}

// scenario plays run lifecycle k%9 from trigger to its end, plus now and
// then a change to the stack or the worker, and returns the run's id.
func (l *lane) scenario(k int) (id string) {
	switch k % 9 {
	case 0: // tracked, no changes
		id = l.trigger(run.Tracked, false)
		l.plan(id, 0, false)
	case 1: // tracked with changes: confirmed, then applied on a worker again
		id = l.trigger(run.Tracked, false)
		l.plan(id, 0, true)
		l.do(id, run.Confirm{Actor: l.user, At: l.now()})
		l.assign(id)
		l.phase(id, run.PhasePreparingApply)
		l.start(id, run.PhaseApplying)
		l.do(id, run.RecordOutputs{Outputs: simOutputs, Actor: l.workerID, At: l.now()})
		l.finish(id, run.PhaseApplying, 0, false)
		l.do(id, run.Finish{Actor: l.workerID, At: l.now()})
	case 2: // autodeploy: applies right after planning
		l.autodeploy = true
		id = l.trigger(run.Tracked, false)
		l.autodeploy = false
		l.plan(id, 0, true)
		l.finish(id, run.PhaseApplying, 0, false)
		l.do(id, run.Finish{Actor: l.workerID, At: l.now()})
	case 3: // proposed, sometimes drift detection
		id = l.trigger(run.Proposed, k%2 == 0)
		l.plan(id, 0, true)
	case 4: // task
		id = l.trigger(run.Task, false)
		l.assign(id)
		l.phase(id, run.PhasePreparing)
		l.phase(id, run.PhaseInitializing)
		l.phase(id, run.PhasePerforming)
		l.do(id, run.Finish{Actor: l.workerID, At: l.now()})
	case 5: // planning fails
		id = l.trigger(run.Tracked, false)
		l.plan(id, 1, false)
	case 6: // stopped while planning
		id = l.trigger(run.Tracked, false)
		l.assign(id)
		l.phase(id, run.PhasePreparing)
		l.phase(id, run.PhaseInitializing)
		l.start(id, run.PhasePlanning)
		l.do(id, run.Stop{Note: "wrong commit", Actor: l.user, At: l.now()})
		l.finish(id, run.PhasePlanning, 130, false)
	case 7: // plan discarded
		id = l.trigger(run.Tracked, false)
		l.plan(id, 0, true)
		l.do(id, run.Discard{Note: "not now", Actor: l.user, At: l.now()})
	case 8: // canceled before a worker took it, and the stack and worker change
		id = l.trigger(run.Proposed, false)
		l.do(id, run.Cancel{Note: "superseded", Actor: l.user, At: l.now()})
		l.touch(k)
	}
	return id
}

// plan takes a READY run through planning with the given exit code.
func (l *lane) plan(id string, exit int, changes bool) {
	l.assign(id)
	l.phase(id, run.PhasePreparing)
	l.phase(id, run.PhaseInitializing)
	l.start(id, run.PhasePlanning)
	l.finish(id, run.PhasePlanning, exit, changes)
}

// touch changes the stack's settings, environment and lock, and drains and
// undrains the worker.
func (l *lane) touch(k int) {
	st := l.stacks[l.stackID]
	settings := st.Settings()
	settings.Description = fmt.Sprintf("revision %d", k)
	settings.Labels = append(settings.Labels, fmt.Sprintf("rev:%d", k%5))
	u := l.begin()
	u.stack(l.stackID, stack.UpdateSettings{Settings: settings, Actor: l.user, At: l.now()})
	u.commit()
	l.stackCmd(stack.SetEnv{Key: "TF_VAR_region", Value: fmt.Sprintf("eu-%d", k%3), Actor: l.user, At: l.now()})
	l.stackCmd(stack.SetEnv{Key: "wo_TOKEN", Secret: true, Ciphertext: []byte(fmt.Sprintf("sealed-%d", k)), Actor: l.user, At: l.now()})
	l.stackCmd(stack.Lock{Note: "maintenance", Actor: l.user, At: l.now()})
	l.stackCmd(stack.Unlock{Actor: l.user, At: l.now()})
	if k%2 == 0 {
		l.stackCmd(stack.DeleteEnv{Key: "TF_VAR_region", Actor: l.user, At: l.now()})
	}
	l.workerCmd(worker.Drain{Actor: l.user, At: l.now()})
	l.workerCmd(worker.Undrain{Actor: l.user, At: l.now()})
}

func (l *lane) stackCmd(c stack.Command) {
	u := l.begin()
	u.stack(l.stackID, c)
	u.commit()
}

func (l *lane) workerCmd(c worker.Command) {
	u := l.begin()
	u.worker(l.workerID, c)
	u.commit()
}
