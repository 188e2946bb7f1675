package commands_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// runStatuses returns the statuses a run went through, from the store.
func runStatuses(t *testing.T, e *env, runID string) (run.State, []run.Status) {
	t.Helper()
	st, err := aggregate.Load(context.Background(), testenv.Aggregates(t, e.store), aggregate.Run, runID)
	if err != nil {
		t.Fatal(err)
	}
	var out []run.Status
	for _, h := range st.History() {
		out = append(out, h.Status)
	}
	return st, out
}

// A replan deletes the saved workspace while the run is REPLAN_REQUESTED
// and makes it READY again for any worker; the replanned run that fails is
// retried as a new run at the same commit.
func TestReplanAndRetry(t *testing.T) {
	e := newEnv(t)
	bucket, err := objstore.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bucket.Close() })
	workspaces := executor.BucketStore{Bucket: bucket}
	s := e.service(t, func(c *commands.Config) { c.Workspaces = workspaces })
	sys, err := commands.NewSystem(commands.SystemConfig{Aggregates: testenv.Aggregates(t, e.store)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	stackID := newStack(t, s, "replanned")
	runID, err := s.TriggerRun(ctx, alice, commands.Trigger{Stack: stackID, Type: run.Tracked, Commit: commit})
	if err != nil {
		t.Fatal(err)
	}
	// A worker plans the run to UNCONFIRMED and saves its workspace.
	plan := func(changes bool) string {
		t.Helper()
		w, err := s.RegisterWorker(ctx, ids.PublicPool, commands.WorkerRegistration{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sys.AssignRun(ctx, commands.Caller{Actor: "system:scheduler"}, runID, ids.PublicPool, w); err != nil {
			t.Fatal(err)
		}
		if err := s.StartPhase(ctx, ids.PublicPool, w, runID, run.PhasePreparing); err != nil {
			t.Fatal(err)
		}
		for _, next := range []run.Phase{run.PhaseInitializing, run.PhasePlanning} {
			prev := run.PhasePreparing
			if next == run.PhasePlanning {
				prev = run.PhaseInitializing
			}
			if err := s.FinishAndStartPhase(ctx, ids.PublicPool, w, runID, commands.PhaseResult{Phase: prev, Duration: time.Second}, next); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.FinishPhase(ctx, ids.PublicPool, w, runID, commands.PhaseResult{Phase: run.PhasePlanning, HasChanges: changes}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	plan(true)
	if err := bucket.WriteAll(ctx, executor.WorkspaceKey(runID), []byte("the sealed workspace of the first plan"), nil); err != nil {
		t.Fatal(err)
	}

	// Refused before the plan exists and on a server without a store.
	if err := e.service(t, nil).ReplanRun(ctx, alice, runID); err == nil {
		t.Error("a replan without a workspace store was accepted")
	}
	if err := s.ReplanRun(ctx, alice, runID); err != nil {
		t.Fatal(err)
	}
	if ok, err := bucket.Exists(ctx, executor.WorkspaceKey(runID)); err != nil || ok {
		t.Errorf("the saved workspace is still there after the replan (%v)", err)
	}
	st, statuses := runStatuses(t, e, runID)
	want := []run.Status{run.Queued, run.Ready, run.Preparing, run.Initializing, run.Planning, run.Unconfirmed, run.ReplanRequested, run.Ready}
	if !slices.Equal(statuses, want) || st.WorkerID() != "" {
		t.Fatalf("after the replan: %v (worker %q), want %v", statuses, st.WorkerID(), want)
	}
	if err := s.ReplanRun(ctx, alice, runID); !errors.Is(err, run.ErrIllegalTransition) {
		t.Errorf("replanning a READY run: %v, want an illegal transition", err)
	}
	if _, err := s.RetryRun(ctx, alice, runID); !errors.Is(err, run.ErrIllegalTransition) {
		t.Errorf("retrying a run under way: %v, want an illegal transition", err)
	}

	// Any worker plans it again; this time the run fails.
	w := plan(false)
	if st, _ := runStatuses(t, e, runID); st.Status() != run.Finished {
		t.Fatalf("the second plan without changes: %s", st.Status())
	}
	retried, err := s.RetryRun(ctx, alice, runID)
	if !errors.Is(err, run.ErrIllegalTransition) {
		t.Fatalf("retrying a FINISHED run: %s, %v", retried, err)
	}
	failedID, err := s.TriggerRun(ctx, alice, commands.Trigger{Stack: stackID, Type: run.Tracked, Commit: commit, Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.AssignRun(ctx, commands.Caller{Actor: "system:scheduler"}, failedID, ids.PublicPool, w); err != nil {
		t.Fatal(err)
	}
	if err := s.EndRun(ctx, ids.PublicPool, w, failedID, run.Failed, "the worker fell over", nil); err != nil {
		t.Fatal(err)
	}
	retried, err = s.RetryRun(ctx, commands.Caller{Actor: "user:bob"}, failedID)
	if err != nil {
		t.Fatal(err)
	}
	r, statuses := runStatuses(t, e, retried)
	if r.RetryOf() != failedID || r.Commit() != commit || !r.Destroy() || r.TriggeredBy() != "user:bob" || r.StackID() != stackID {
		t.Errorf("the retry: of %q at %s, destroy %v, by %s on %s", r.RetryOf(), r.Commit(), r.Destroy(), r.TriggeredBy(), r.StackID())
	}
	if !slices.Equal(statuses, []run.Status{run.Queued, run.Ready}) {
		t.Errorf("the retry went through %v, want QUEUED, READY (it holds the free stack lock)", statuses)
	}
	stk, err := s.StackState(ctx, stackID)
	if err != nil || stk.LockHolder() != retried {
		t.Errorf("the stack's lock is held by %q (%v), want the retry", stk.LockHolder(), err)
	}
	if _, err := s.RetryRun(ctx, alice, "run_0123456789abcdef"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("retrying an unknown run: %v", err)
	}
}

// terraformState holds one managed resource instance.
const terraformState = `{"version": 4, "terraform_version": "1.11.4", "serial": 1, "lineage": "day2",
  "outputs": {}, "resources": [{"mode": "managed", "type": "terraform_data", "name": "x", "instances": [{"attributes": {}}]}]}`

// A stack whose managed state holds resources is deleted only with force,
// and its state versions stay reachable by its id.
func TestDeleteStackGuardsItsManagedResources(t *testing.T) {
	e := newEnv(t)
	objects := testenv.ObjectStore(t, "mem://", testenv.Keeper(t))
	states, err := statebackend.New(e.cfg.Aggregates, e.pool, objects, statebackend.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := e.service(t, func(c *commands.Config) { c.State, c.StateContents = states, states })
	ctx := ctxFor(t)
	settings := func(name string) stack.Settings {
		return stack.Settings{Name: name, RepositoryURL: "https://git.example.com/infra.git"}
	}
	id, err := s.CreateStack(ctx, alice, settings("holding"), true, []byte(terraformState))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.DeleteStack(ctx, alice, "holding", false)
	var has *stack.HasResourcesError
	if !errors.As(err, &has) || has.Resources != 1 {
		t.Fatalf("deleting a stack holding a resource: %v, want a HasResourcesError counting 1", err)
	}
	if n := e.count(t, "StackDeleted"); n != 0 {
		t.Fatalf("%d StackDeleted after a refusal", n)
	}
	if _, err := s.DeleteStack(ctx, alice, "holding", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveStack(ctx, "holding"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("the deleted stack's name still resolves: %v", err)
	}
	known, err := s.KnownStack(ctx, id)
	if err != nil || !known.Deleted() || !known.ManagedState() {
		t.Errorf("the deleted stack by id: deleted %v, managed %v, %v", known.Deleted(), known.ManagedState(), err)
	}
	versions, err := states.Versions(ctx, id)
	if err != nil || len(versions) != 1 {
		t.Fatalf("the versions of the deleted stack: %v, %v", versions, err)
	}
	if _, _, err := states.Download(ctx, id, 1, alice.Actor); err != nil {
		t.Errorf("downloading version 1 of the deleted stack: %v", err)
	}
	if _, err := s.KnownStack(ctx, "stk_never"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("a stack that never existed: %v", err)
	}

	// Without resources (no state at all, or a stack Gantry does not
	// manage) no force is needed; without a state backend it is.
	if _, err := s.CreateStack(ctx, alice, settings("empty"), true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteStack(ctx, alice, "empty", false); err != nil {
		t.Errorf("deleting a managed stack without state: %v", err)
	}
	blind := e.service(t, nil)
	if _, err := blind.CreateStack(ctx, alice, settings("unknown"), true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := blind.DeleteStack(ctx, alice, "unknown", false); err == nil {
		t.Error("a server that cannot read state deleted a managed stack without force")
	}
	if _, err := blind.DeleteStack(ctx, alice, "unknown", true); err != nil {
		t.Errorf("a forced delete on a server that cannot read state: %v", err)
	}
}
