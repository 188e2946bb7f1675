package commands

import (
	"context"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// The aggregates commands decide on, by domain package.
type (
	stackAggregate  = aggregate.Root[stack.State, stack.Command, stack.Event]
	runAggregate    = aggregate.Root[run.State, run.Command, run.Event]
	poolAggregate   = aggregate.Root[workerpool.State, workerpool.Command, workerpool.Event]
	workerAggregate = aggregate.Root[worker.State, worker.Command, worker.Event]
)

func stackOf(ctx context.Context, u *aggregate.Unit, id string) (*stackAggregate, error) {
	return aggregate.Get(ctx, u, aggregate.Stack, id)
}

func runOf(ctx context.Context, u *aggregate.Unit, id string) (*runAggregate, error) {
	return aggregate.Get(ctx, u, aggregate.Run, id)
}

func poolOf(ctx context.Context, u *aggregate.Unit, id string) (*poolAggregate, error) {
	return aggregate.Get(ctx, u, aggregate.WorkerPool, id)
}

func workerOf(ctx context.Context, u *aggregate.Unit, id string) (*workerAggregate, error) {
	return aggregate.Get(ctx, u, aggregate.Worker, id)
}
