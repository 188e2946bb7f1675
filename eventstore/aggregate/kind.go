package aggregate

import (
	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/drift"
	"github.com/gantryhq/gantry/domain/name"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
)

// Kind describes one kind of aggregate: where its events are stored and the
// domain's pure Decide and Apply. S is the state, C the command and E the
// event type of the kind's domain package.
type Kind[S, C, E any] struct {
	// StreamType is the type of every stream of the kind.
	StreamType string
	// StreamID maps an aggregate's key to its stream id; nil means the key
	// is the stream id (the aggregate's own id).
	StreamID func(key string) string
	// Decide returns the events a command causes, or why it is refused.
	Decide func(S, C) ([]E, error)
	// Apply folds an event into the state.
	Apply func(*S, E)
}

// Stream returns the stream of the aggregate with key.
func (k Kind[S, C, E]) Stream(key string) eventstore.Stream {
	id := key
	if k.StreamID != nil {
		id = k.StreamID(key)
	}
	return eventstore.Stream{Type: k.StreamType, ID: id}
}

// The kinds of Gantry's aggregates. Their stream types and ids are what is
// stored: they never change.
var (
	// Run is keyed by run id ("run_…").
	Run = Kind[run.State, run.Command, run.Event]{StreamType: eventstore.StreamRun, Decide: run.Decide, Apply: (*run.State).Apply}
	// Stack is keyed by stack id ("stk_…").
	Stack = Kind[stack.State, stack.Command, stack.Event]{StreamType: eventstore.StreamStack, Decide: stack.Decide, Apply: (*stack.State).Apply}
	// WorkerPool is keyed by pool id ("wp_…").
	WorkerPool = Kind[workerpool.State, workerpool.Command, workerpool.Event]{StreamType: eventstore.StreamWorkerPool, Decide: workerpool.Decide, Apply: (*workerpool.State).Apply}
	// Worker is keyed by worker id ("wkr_…").
	Worker = Kind[worker.State, worker.Command, worker.Event]{StreamType: eventstore.StreamWorker, Decide: worker.Decide, Apply: (*worker.State).Apply}
	// ManagedState, a stack's managed Terraform state, is keyed by the
	// stack id; its stream id is "state_<stack id>", as stream ids are
	// unique across types and the stack's own stream has the stack id.
	ManagedState = Kind[state.State, state.Command, state.Event]{StreamType: eventstore.StreamState,
		StreamID: prefixed(eventstore.StreamState), Decide: state.Decide, Apply: (*state.State).Apply}
	// StackName, the reservation of a stack name, is keyed by the name in
	// any case; its stream id is "stackname_" + name.Key(name).
	StackName = Kind[name.State, name.Command, name.Event]{StreamType: eventstore.StreamStackName,
		StreamID: nameStreamID(eventstore.StreamStackName), Decide: name.Decide, Apply: (*name.State).Apply}
	// PoolName, the reservation of a worker pool name, is keyed by the name
	// in any case; its stream id is "poolname_" + name.Key(name).
	PoolName = Kind[name.State, name.Command, name.Event]{StreamType: eventstore.StreamPoolName,
		StreamID: nameStreamID(eventstore.StreamPoolName), Decide: name.Decide, Apply: (*name.State).Apply}
	// VCS, an integration, is keyed by its id ("vcs_…").
	VCS = Kind[vcs.State, vcs.Command, vcs.Event]{StreamType: eventstore.StreamVCS, Decide: vcs.Decide, Apply: (*vcs.State).Apply}
	// VCSName, the reservation of an integration name, is keyed by the
	// name in any case; its stream id is "vcsname_" + name.Key(name).
	VCSName = Kind[name.State, name.Command, name.Event]{StreamType: eventstore.StreamVCSName,
		StreamID: nameStreamID(eventstore.StreamVCSName), Decide: name.Decide, Apply: (*name.State).Apply}
	// Delivery, a webhook delivery, is keyed by its id ("dlv_…").
	Delivery = Kind[delivery.State, delivery.Command, delivery.Event]{StreamType: eventstore.StreamDelivery,
		Decide: delivery.Decide, Apply: (*delivery.State).Apply}
	// Schedule, a cron schedule, is keyed by its id ("sch_…").
	Schedule = Kind[schedule.State, schedule.Command, schedule.Event]{StreamType: eventstore.StreamSchedule,
		Decide: schedule.Decide, Apply: (*schedule.State).Apply}
	// Drift, a stack's drift record, is keyed by the stack id; its stream
	// id is "drift_<stack id>".
	Drift = Kind[drift.State, drift.Command, drift.Event]{StreamType: eventstore.StreamDrift,
		StreamID: drift.StreamID, Decide: drift.Decide, Apply: (*drift.State).Apply}
	// APIKey is keyed by key id ("ak_…").
	APIKey = Kind[apikey.State, apikey.Command, apikey.Event]{StreamType: eventstore.StreamAPIKey, Decide: apikey.Decide, Apply: (*apikey.State).Apply}
	// APIKeyName, the reservation of an API key name, is keyed by the name
	// in any case; its stream id is "apikeyname_" + name.Key(name).
	APIKeyName = Kind[name.State, name.Command, name.Event]{StreamType: eventstore.StreamAPIKeyName,
		StreamID: nameStreamID(eventstore.StreamAPIKeyName), Decide: name.Decide, Apply: (*name.State).Apply}
)

func prefixed(streamType string) func(string) string {
	return func(key string) string { return streamType + "_" + key }
}

func nameStreamID(streamType string) func(string) string {
	return func(n string) string { return streamType + "_" + name.Key(n) }
}
