package eventstore

import (
	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/name"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
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
	for _, e := range apikey.Events() {
		if err := r.RegisterNamed(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}
