package commands

import (
	"context"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
)

// The aggregates commands load, by domain package.
type (
	stackAggregate  = aggregate[stack.State, stack.Command, stack.Event]
	runAggregate    = aggregate[run.State, run.Command, run.Event]
	poolAggregate   = aggregate[workerpool.State, workerpool.Command, workerpool.Event]
	workerAggregate = aggregate[worker.State, worker.Command, worker.Event]
)

func stackOf(ctx context.Context, u *unit, id string) (*stackAggregate, error) {
	return get(ctx, u, eventstore.Stream{Type: eventstore.StreamStack, ID: id}, stack.Decide, (*stack.State).Apply)
}

func runOf(ctx context.Context, u *unit, id string) (*runAggregate, error) {
	return get(ctx, u, eventstore.Stream{Type: eventstore.StreamRun, ID: id}, run.Decide, (*run.State).Apply)
}

func poolOf(ctx context.Context, u *unit, id string) (*poolAggregate, error) {
	return get(ctx, u, eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: id}, workerpool.Decide, (*workerpool.State).Apply)
}

func workerOf(ctx context.Context, u *unit, id string) (*workerAggregate, error) {
	return get(ctx, u, eventstore.Stream{Type: eventstore.StreamWorker, ID: id}, worker.Decide, (*worker.State).Apply)
}

func poolStream(id string) eventstore.Stream {
	return eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: id}
}
