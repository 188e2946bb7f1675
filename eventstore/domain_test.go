package eventstore_test

import (
	"testing"

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

func TestDomainRegistryKnowsEveryDomainEvent(t *testing.T) {
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, names := range [][]string{typeNames(run.Events()), typeNames(stack.Events()), typeNames(workerpool.Events()), typeNames(worker.Events()), typeNames(state.Events()), typeNames(name.Events()),
		typeNames(vcs.Events()), typeNames(delivery.Events()), typeNames(schedule.Events()), typeNames(drift.Events()), typeNames(apikey.Events())} {
		for _, name := range names {
			n++
			if !reg.Known(name) {
				t.Errorf("%s is not registered", name)
			}
		}
	}
	if len(reg.Names()) != n {
		t.Fatalf("registry has %d types, the domain %d", len(reg.Names()), n)
	}
}

func typeNames[E interface{ EventType() string }](evs []E) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventType()
	}
	return out
}
