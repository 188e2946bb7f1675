package commands_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/testenv"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

var alice = commands.Caller{Actor: "user:alice"}

// interferingStore is the real store with another writer that changes a
// stack just before each of the first `times` appends of the command layer,
// as a concurrent request would.
type interferingStore struct {
	*eventstore.Store
	stackID string
	times   int32
	calls   atomic.Int32
}

func (s *interferingStore) AppendAll(ctx context.Context, batches ...eventstore.Batch) ([][]eventstore.Event, error) {
	if n := s.calls.Add(1); n <= s.times {
		other := eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: "user:other"})
		_, err := s.Store.Append(other, eventstore.Stream{Type: eventstore.StreamStack, ID: s.stackID}, eventstore.Any,
			stack.StackEnvSet{Key: "RACE", Name: "RACE", Scope: stack.ScopeAll, Value: time.Now().String(), At: time.Now().UTC(), Actor: "user:other"})
		if err != nil {
			return nil, err
		}
	}
	return s.Store.AppendAll(ctx, batches...)
}

func newStack(t *testing.T, s *commands.Service, name string) string {
	t.Helper()
	id, err := s.CreateStack(ctxFor(t), alice, stack.Settings{Name: name, RepositoryURL: "https://git.example.com/infra.git"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestConflictsAreRetriedWithFreshState(t *testing.T) {
	e := newEnv(t)
	stackID := newStack(t, e.service(t, nil), "retried")
	store := &interferingStore{Store: e.store, stackID: stackID, times: 2}
	s := e.service(t, func(c *commands.Config) { c.Aggregates = testenv.Aggregates(t, store) })

	runID, err := s.TriggerRun(ctxFor(t), alice, commands.Trigger{Stack: "retried", Type: run.Tracked, Commit: commit})
	if err != nil {
		t.Fatalf("trigger lost to two concurrent changes: %v", err)
	}
	if got := store.calls.Load(); got != 3 {
		t.Errorf("%d appends, want 3 (two conflicts, then success)", got)
	}
	events, err := e.store.Load(context.Background(), runID)
	if err != nil || len(events) != 2 || events[0].Type != "RunQueued" || events[1].Type != "RunReady" {
		t.Fatalf("run events %v, %v: want RunQueued, RunReady", events, err)
	}
}

func TestConflictsGiveUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	stackID := newStack(t, e.service(t, nil), "contended")
	store := &interferingStore{Store: e.store, stackID: stackID, times: 1000}
	s := e.service(t, func(c *commands.Config) { c.Aggregates = testenv.Aggregates(t, store); c.MaxAttempts = 4 })

	_, err := s.TriggerRun(ctxFor(t), alice, commands.Trigger{Stack: stackID, Type: run.Tracked, Commit: commit})
	var conflict *eventstore.ConflictError
	if !errors.As(err, &conflict) || conflict.Stream.ID != stackID {
		t.Fatalf("error %v, want a *eventstore.ConflictError on the stack", err)
	}
	if got := store.calls.Load(); got != 4 {
		t.Errorf("%d attempts, want MaxAttempts = 4", got)
	}
	if n := e.count(t, "RunQueued"); n != 0 {
		t.Errorf("%d runs written by a command that gave up", n)
	}
}

// Concurrent triggers on one stack: every run that was accepted is in the
// lock queue exactly once, in the order its enqueue was committed, and only
// the head holds the lock.
func TestConcurrentTriggersKeepTheQueueConsistent(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, func(c *commands.Config) { c.MaxAttempts = 20 })
	stackID := newStack(t, s, "busy")
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ids[i], errs[i] = s.TriggerRun(ctxFor(t), alice, commands.Trigger{Stack: stackID, Type: run.Tracked, Commit: commit})
		})
	}
	wg.Wait()
	var accepted []string
	for i := range n {
		switch {
		case errs[i] == nil:
			accepted = append(accepted, ids[i])
		case !errors.Is(errs[i], eventstore.ErrConflict):
			t.Errorf("trigger %d: %v", i, errs[i])
		}
	}
	t.Logf("%d of %d concurrent triggers accepted", len(accepted), n)
	if len(accepted) < n/2 {
		t.Fatalf("only %d of %d concurrent triggers got through 20 attempts", len(accepted), n)
	}

	events, err := e.store.Load(context.Background(), stackID)
	if err != nil {
		t.Fatal(err)
	}
	var st stack.State
	var enqueued []string
	for _, ev := range events {
		v, err := e.store.Registry().Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(v.(stack.Event))
		if q, ok := v.(stack.StackRunEnqueued); ok {
			enqueued = append(enqueued, q.RunID)
		}
	}
	got := append([]string{st.LockHolder()}, st.Queue()...)
	if !slices.Equal(got, enqueued) {
		t.Errorf("holder and queue %v, want the enqueue order %v", got, enqueued)
	}
	slices.Sort(accepted)
	slices.Sort(enqueued)
	if !slices.Equal(accepted, enqueued) {
		t.Errorf("accepted runs %v, enqueued %v", accepted, enqueued)
	}
	if n := e.count(t, "RunReady"); n != 1 {
		t.Errorf("%d runs READY, want only the lock holder", n)
	}
}
