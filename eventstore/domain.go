package eventstore

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
)

// Stream types of the domain aggregates: the stream of an aggregate is
// Stream{Type: StreamX, ID: <the aggregate's id>}.
const (
	StreamRun        = "run"
	StreamStack      = "stack"
	StreamWorkerPool = "workerpool"
	StreamWorker     = "worker"
	// StreamState is a stack's managed Terraform state; its stream id is
	// "state_" + the stack id, so it never shares the stack stream's versions.
	StreamState = "state"
	// StreamStackName and StreamPoolName are the name reservations of stacks
	// and worker pools; a stream id is the type, "_" and name.Key of the name.
	StreamStackName = "stackname"
	StreamPoolName  = "poolname"
	// StreamVCS is a VCS integration ("vcs_…"), StreamVCSName the
	// reservation of its name, StreamDelivery a webhook delivery
	// ("dlv_…"), StreamSchedule a cron schedule ("sch_…") and StreamDrift
	// a stack's drift record ("drift_" + the stack id).
	StreamVCS      = "vcs"
	StreamVCSName  = "vcsname"
	StreamDelivery = "delivery"
	StreamSchedule = "schedule"
	StreamDrift    = "drift"
	// StreamAPIKey is an API key, keyed by its id ("ak_…");
	// StreamAPIKeyName the reservation of a key name, like the names above.
	StreamAPIKey     = "apikey"
	StreamAPIKeyName = "apikeyname"
)

// DomainRegistry returns a registry of every domain event at its current
// schema version (all version 1 so far): the one registry every store that
// aggregates are written through or read from uses.
func DomainRegistry() (*Registry, error) {
	r := NewRegistry()
	for _, e := range run.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range stack.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range workerpool.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range worker.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range state.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range name.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range vcs.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range delivery.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range schedule.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range drift.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	for _, e := range apikey.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}
