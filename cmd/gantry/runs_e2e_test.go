package main

import (
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// trigger triggers a run of stack and fails the test on error.
func trigger(t *testing.T, c clients, stack string, typ gantryv1.RunType) *gantryv1.Run {
	t.Helper()
	resp, err := c.runs.TriggerRun(testCtx(t), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: stack, Type: typ}))
	if err != nil {
		t.Fatalf("trigger %s run of %s: %v", typ, stack, err)
	}
	return resp.Msg.GetRun()
}

func getRun(t *testing.T, c clients, id string) *gantryv1.Run {
	t.Helper()
	resp, err := c.runs.GetRun(testCtx(t), connect.NewRequest(&gantryv1.GetRunRequest{Run: id}))
	if err != nil {
		t.Fatalf("get run %s: %v", id, err)
	}
	return resp.Msg.GetRun()
}

func getStack(t *testing.T, c clients, ref string) *gantryv1.Stack {
	t.Helper()
	resp, err := c.stacks.GetStack(testCtx(t), connect.NewRequest(&gantryv1.GetStackRequest{Stack: ref}))
	if err != nil {
		t.Fatalf("get stack %s: %v", ref, err)
	}
	return resp.Msg.GetStack()
}

// states returns the state of each run, as the server shows them now.
func states(t *testing.T, c clients, runs ...*gantryv1.Run) []gantryv1.RunState {
	t.Helper()
	out := make([]gantryv1.RunState, len(runs))
	for i, r := range runs {
		out[i] = getRun(t, c, r.GetId()).GetState()
	}
	return out
}

const (
	queued   = gantryv1.RunState_RUN_STATE_QUEUED
	ready    = gantryv1.RunState_RUN_STATE_READY
	canceled = gantryv1.RunState_RUN_STATE_CANCELED
	tracked  = gantryv1.RunType_RUN_TYPE_TRACKED
	proposed = gantryv1.RunType_RUN_TYPE_PROPOSED
)

func TestTrackedRunsQueueFIFOBehindTheStackLock(t *testing.T) {
	srv := startServer(t)
	repo, head := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "demo", "--repo", repo)
	admin := srv.as(srv.adminToken(t))

	r1 := trigger(t, admin, "demo", tracked)
	r2 := trigger(t, admin, "demo", tracked)
	r3 := trigger(t, admin, "demo", tracked)
	// Read-your-writes: each response already shows the run's state.
	if got := []gantryv1.RunState{r1.GetState(), r2.GetState(), r3.GetState()}; !slices.Equal(got, []gantryv1.RunState{ready, queued, queued}) {
		t.Fatalf("trigger responses: states %v, want READY QUEUED QUEUED", got)
	}
	for _, r := range []*gantryv1.Run{r1, r2, r3} {
		if r.GetCommit() != head {
			t.Errorf("run %s at commit %q, want the branch head %s (git ls-remote)", r.GetId(), r.GetCommit(), head)
		}
		if r.GetTriggeredBy() != "user:"+firstAdminKeyName {
			t.Errorf("run %s triggered by %q", r.GetId(), r.GetTriggeredBy())
		}
	}
	stk := getStack(t, admin, "demo")
	if stk.GetLockHolderRunId() != r1.GetId() || !slices.Equal(stk.GetQueuedRunIds(), []string{r2.GetId(), r3.GetId()}) {
		t.Fatalf("stack lock %q queue %v, want %s holding and [%s %s] queued", stk.GetLockHolderRunId(), stk.GetQueuedRunIds(), r1.GetId(), r2.GetId(), r3.GetId())
	}
	show := srv.mustCLI(t, "stack", "show", "demo")
	if !strings.Contains(show, "queue") || !strings.Contains(show, r2.GetId()+" "+r3.GetId()) || !strings.Contains(show, r1.GetId()) {
		t.Errorf("stack show does not list the lock holder and the queue in order:\n%s", show)
	}

	// A proposed run never waits for the lock.
	p := trigger(t, admin, "demo", proposed)
	if p.GetState() != ready {
		t.Errorf("proposed run is %s, want READY at once", p.GetState())
	}
	if q := getStack(t, admin, "demo").GetQueuedRunIds(); slices.Contains(q, p.GetId()) {
		t.Errorf("proposed run %s joined the lock queue %v", p.GetId(), q)
	}

	// Cancelling the head hands the lock to the next run, in the same append.
	resp, err := admin.runs.CancelRun(testCtx(t), connect.NewRequest(&gantryv1.CancelRunRequest{Run: r1.GetId(), Note: "not needed"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetRun().GetState() != canceled {
		t.Errorf("cancel returned a %s run", resp.Msg.GetRun().GetState())
	}
	if got := states(t, admin, r1, r2, r3, p); !slices.Equal(got, []gantryv1.RunState{canceled, ready, queued, ready}) {
		t.Fatalf("after cancelling the head: states %v, want CANCELED READY QUEUED READY", got)
	}
	stk = getStack(t, admin, "demo")
	if stk.GetLockHolderRunId() != r2.GetId() || !slices.Equal(stk.GetQueuedRunIds(), []string{r3.GetId()}) {
		t.Fatalf("after cancel: lock %q queue %v", stk.GetLockHolderRunId(), stk.GetQueuedRunIds())
	}
	history := getRun(t, admin, r1.GetId()).GetHistory()
	if len(history) != 3 || history[2].GetState() != canceled || history[2].GetNote() != "not needed" || history[2].GetActor() != "user:admin" {
		t.Errorf("history of the canceled run: %v", history)
	}

	// Discarding a queued run only takes it out of the queue.
	if _, err := admin.runs.DiscardRun(testCtx(t), connect.NewRequest(&gantryv1.DiscardRunRequest{Run: r3.GetId()})); err != nil {
		t.Fatal(err)
	}
	stk = getStack(t, admin, "demo")
	if stk.GetLockHolderRunId() != r2.GetId() || len(stk.GetQueuedRunIds()) != 0 {
		t.Errorf("after discarding the queued run: lock %q queue %v", stk.GetLockHolderRunId(), stk.GetQueuedRunIds())
	}

	// run list: newest first.
	out := srv.mustCLI(t, "run", "list", "demo")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ids []string
	for _, l := range lines[1:] {
		ids = append(ids, strings.Fields(l)[0])
	}
	if want := []string{p.GetId(), r3.GetId(), r2.GetId(), r1.GetId()}; !slices.Equal(ids, want) {
		t.Errorf("run list ids %v, want newest first %v\n%s", ids, want, out)
	}
}

func TestManualLockAdmitsOnlyItsHolderAndUnlockHandsTheLockOn(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "locked", "--repo", repo)
	alice := srv.as(srv.token(t, "alice", apikey.RoleWriter))
	bob := srv.as(srv.token(t, "bob", apikey.RoleWriter))

	// Bob's run holds the lock, Bob's second waits; then Alice locks.
	b1 := trigger(t, bob, "locked", tracked)
	b2 := trigger(t, bob, "locked", tracked)
	if _, err := alice.stacks.LockStack(testCtx(t), connect.NewRequest(&gantryv1.LockStackRequest{Stack: "locked", Note: "migrating state"})); err != nil {
		t.Fatal(err)
	}
	_, err := bob.runs.TriggerRun(testCtx(t), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "locked"}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "user:alice") {
		t.Fatalf("bob's trigger on alice's lock: %v, want FailedPrecondition naming user:alice", err)
	}
	_, err = bob.runs.TriggerTask(testCtx(t), connect.NewRequest(&gantryv1.TriggerTaskRequest{Stack: "locked", Command: "terraform state list"}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("bob's task on alice's lock: %v, want FailedPrecondition", err)
	}
	if p := trigger(t, bob, "locked", proposed); p.GetState() != ready {
		t.Errorf("bob's proposed run on a locked stack is %s, want READY", p.GetState())
	}
	a1 := trigger(t, alice, "locked", tracked)
	if a1.GetState() != queued {
		t.Errorf("alice's run behind bob's is %s, want QUEUED", a1.GetState())
	}

	// The lock holder's run ends: the head of the queue is bob's, which the
	// manual lock does not admit, so the run lock stays free.
	if _, err := bob.runs.CancelRun(testCtx(t), connect.NewRequest(&gantryv1.CancelRunRequest{Run: b1.GetId()})); err != nil {
		t.Fatal(err)
	}
	stk := getStack(t, alice, "locked")
	if stk.GetLockHolderRunId() != "" || !slices.Equal(stk.GetQueuedRunIds(), []string{b2.GetId(), a1.GetId()}) {
		t.Fatalf("with the manual lock held: run lock %q queue %v", stk.GetLockHolderRunId(), stk.GetQueuedRunIds())
	}
	if stk.GetManualLock().GetHolder() != "user:alice" || stk.GetManualLock().GetNote() != "migrating state" {
		t.Errorf("manual lock %v", stk.GetManualLock())
	}

	// Only the holder unlocks; force is for administrators.
	_, err = bob.stacks.UnlockStack(testCtx(t), connect.NewRequest(&gantryv1.UnlockStackRequest{Stack: "locked"}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("bob unlocking alice's lock: %v, want FailedPrecondition", err)
	}
	_, err = bob.stacks.UnlockStack(testCtx(t), connect.NewRequest(&gantryv1.UnlockStackRequest{Stack: "locked", Force: true}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("bob forcing an unlock: %v, want PermissionDenied", err)
	}
	resp, err := alice.stacks.UnlockStack(testCtx(t), connect.NewRequest(&gantryv1.UnlockStackRequest{Stack: "locked"}))
	if err != nil {
		t.Fatal(err)
	}
	// Unlocking hands the run lock to the head of the queue.
	stk = resp.Msg.GetStack()
	if stk.GetManualLock() != nil || stk.GetLockHolderRunId() != b2.GetId() || !slices.Equal(stk.GetQueuedRunIds(), []string{a1.GetId()}) {
		t.Fatalf("after unlock: manual lock %v, run lock %q, queue %v", stk.GetManualLock(), stk.GetLockHolderRunId(), stk.GetQueuedRunIds())
	}
	if got := states(t, alice, b2, a1); !slices.Equal(got, []gantryv1.RunState{ready, queued}) {
		t.Errorf("after unlock: states %v, want READY QUEUED", got)
	}

	// An administrator may force the unlock of someone else's lock.
	if _, err := alice.stacks.LockStack(testCtx(t), connect.NewRequest(&gantryv1.LockStackRequest{Stack: "locked"})); err != nil {
		t.Fatal(err)
	}
	out := srv.mustCLI(t, "stack", "unlock", "locked", "--force")
	if !strings.Contains(out, "manual lock    -") {
		t.Errorf("stack unlock --force by the admin:\n%s", out)
	}
}
