package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/testenv"
)

// AssignRun needs nothing but the event store: a System on a bare
// repository records it, and refuses a run or worker that is not free.
func TestAssignRun(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, nil)
	ctx := ctxFor(t)
	sys, err := commands.NewSystem(commands.SystemConfig{Aggregates: testenv.Aggregates(t, e.store)})
	if err != nil {
		t.Fatal(err)
	}
	const other = "wp_other"
	stackID := newStack(t, s, "assigned") // in the public pool
	proposed := func() string {
		t.Helper()
		id, err := s.TriggerRun(ctx, alice, commands.Trigger{Stack: stackID, Type: run.Proposed, Commit: commit})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	worker := func(pool string) string {
		t.Helper()
		id, err := s.RegisterWorker(ctx, pool, commands.WorkerRegistration{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first, second := proposed(), proposed()
	// The pick-up latency is counted from the run's READY.
	firstState, err := aggregate.Load(ctx, testenv.Aggregates(t, e.store), aggregate.Run, first)
	if err != nil {
		t.Fatal(err)
	}
	history := firstState.History()
	if last := history[len(history)-1]; last.Status != run.Ready {
		t.Fatalf("the first run is %s, want READY", last.Status)
	}
	readySince := history[len(history)-1].At
	w1, w2, elsewhere := worker(ids.PublicPool), worker(ids.PublicPool), worker(other)
	sched := commands.Caller{Actor: "system:scheduler"}

	tests := []struct {
		name              string
		run, pool, worker string
		is                error
	}{
		{"a waiting run to an idle worker", first, ids.PublicPool, w1, nil},
		{"the same run to another worker", first, ids.PublicPool, w2, commands.ErrRunNotWaiting},
		{"another run to the busy worker", second, ids.PublicPool, w1, commands.ErrWorkerNotIdle},
		{"a run to a worker of another pool", second, ids.PublicPool, elsewhere, commands.ErrWorkerNotIdle},
		{"a run whose stack is in another pool", second, other, elsewhere, commands.ErrRunMoved},
		{"an unknown run", "run_0123456789abcdef0123456789abcdef", ids.PublicPool, w2, commands.ErrRunNotWaiting},
		{"a malformed worker id", second, ids.PublicPool, "stk_1", domain.ErrInvalid},
	}
	for _, tt := range tests {
		a, err := sys.AssignRun(ctx, sched, tt.run, tt.pool, tt.worker)
		if tt.is != nil {
			var refused *commands.RefusedError
			if !errors.Is(err, tt.is) || !errors.As(err, &refused) {
				t.Errorf("%s: error %v, want a refusal matching %v", tt.name, err, tt.is)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want := commands.Assigned{RunID: first, StackID: stackID, PoolID: ids.PublicPool, WorkerID: w1, Type: run.Proposed,
			Status: run.Ready, Commit: commit, RunVersion: 3, At: a.At, WaitingSince: readySince}
		if a != want || a.At.IsZero() || a.At.Before(a.WaitingSince) {
			t.Errorf("%s: %+v, want %+v", tt.name, a, want)
		}
	}

	// One append of both streams, recorded as the scheduler.
	var txs []any
	for _, stream := range []struct{ id, event string }{{first, "RunAssigned"}, {w1, "WorkerRunAssigned"}} {
		events, err := e.store.Load(context.Background(), stream.id)
		if err != nil {
			t.Fatal(err)
		}
		last := events[len(events)-1]
		if last.Type != stream.event || last.Metadata.Actor != sched.Actor || last.Metadata.CorrelationID != first {
			t.Errorf("last event of %s: %s by %q (correlation %q), want %s by %s", stream.id, last.Type, last.Metadata.Actor, last.Metadata.CorrelationID, stream.event, sched.Actor)
		}
		txs = append(txs, last.Tx)
	}
	if txs[0] != txs[1] {
		t.Errorf("RunAssigned and WorkerRunAssigned in transactions %v and %v, want one", txs[0], txs[1])
	}
	if n := e.count(t, "RunAssigned"); n != 1 {
		t.Errorf("%d RunAssigned events, want 1", n)
	}
}
