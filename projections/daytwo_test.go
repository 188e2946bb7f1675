package projections_test

import (
	"context"
	"slices"
	"testing"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
)

// A replanned run goes back to READY on its stack's current pool; a retry
// of a destroy run shows both flags; mounted files are listed without
// their content and go with their stack.
func TestDayTwoProjections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("d2")
	var alpha, beta *lane
	var replanned, retry, failed string
	steps := record(t, s, func() {
		s.createPool("wp_one", "one")
		s.createPool("wp_two", "two")
		alpha = s.newLane("alpha", "wp_one")
		beta = s.newLane("beta", "wp_one")

		replanned = alpha.trigger(run.Tracked, false)
		alpha.plan(replanned, 0, true)
		settings := alpha.stacks[alpha.stackID].Settings()
		settings.WorkerPoolID = "wp_two"
		alpha.stackCmd(stack.UpdateSettings{Settings: settings, Actor: alpha.user, At: s.now()})
		alpha.do(replanned, run.Replan{Actor: alpha.user, At: s.now()})
		alpha.do(replanned, run.MarkReady{Actor: alpha.user, At: s.now()})

		failed = beta.trigger(run.Tracked, false)
		beta.plan(failed, 1, false)
		retry = s.id(ids.Run)
		at := s.now()
		u := s.begin()
		u.reserve(eventstore.Stream{Type: eventstore.StreamStack, ID: beta.stackID})
		u.run(retry, run.Trigger{RunID: retry, StackID: beta.stackID, Type: run.Tracked, Commit: commitSHA, Destroy: true,
			RetryOf: failed, Actor: beta.user, At: at})
		u.stack(beta.stackID, stack.EnqueueRun{RunID: retry, RunType: run.Tracked, Actor: beta.user, At: at})
		beta.handOn(u, at)
		u.commit()

		beta.stackCmd(stack.MountFile{Path: "config/kube.yaml", Size: 42, Ciphertext: []byte("sealed"), Actor: beta.user, At: s.now()})
		beta.stackCmd(stack.MountFile{Path: ".netrc", Size: 7, Ciphertext: []byte("sealed"), Actor: beta.user, At: s.now()})
		beta.stackCmd(stack.MountFile{Path: "config/kube.yaml", Size: 43, Ciphertext: []byte("sealed again"), Actor: beta.user, At: s.now()})
		beta.stackCmd(stack.MountFile{Path: "gone.txt", Size: 1, Ciphertext: []byte("x"), Actor: beta.user, At: s.now()})
		beta.stackCmd(stack.DeleteEnv{Key: "gone.txt", Actor: beta.user, At: s.now()})
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	r, err := e.q.GetRun(ctx, replanned)
	if err != nil {
		t.Fatal(err)
	}
	want := []run.Status{run.Queued, run.Ready, run.Preparing, run.Initializing, run.Planning, run.Unconfirmed, run.ReplanRequested, run.Ready}
	if !slices.Equal(statuses(r.History), want) || r.Status != run.Ready || r.WorkerID != "" || r.PoolID != "wp_two" || !r.HoldsLock {
		t.Errorf("replanned run: %v, status %s, worker %q, pool %s, holds lock %v", statuses(r.History), r.Status, r.WorkerID, r.PoolID, r.HoldsLock)
	}
	queue, err := e.q.PoolQueue(ctx, "wp_two")
	if err != nil || len(queue) != 1 || queue[0].RunID != replanned {
		t.Errorf("the queue of the stack's new pool: %+v, %v", queue, err)
	}

	rt, err := e.q.GetRun(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Destroy || rt.RetryOf != failed || rt.Status != run.Ready {
		t.Errorf("retry: destroy %v, retry of %q, status %s", rt.Destroy, rt.RetryOf, rt.Status)
	}
	if f, _ := e.q.GetRun(ctx, failed); f.Destroy || f.RetryOf != "" {
		t.Errorf("the failed run: destroy %v, retry of %q", f.Destroy, f.RetryOf)
	}

	files, err := e.q.StackFiles(ctx, beta.stackID)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != ".netrc" || files[0].Size != 7 || files[1].Path != "config/kube.yaml" || files[1].Size != 43 || files[1].UpdatedAt.IsZero() {
		t.Errorf("files = %+v", files)
	}
	if none, err := e.q.StackFiles(ctx, alpha.stackID); err != nil || len(none) != 0 || none == nil {
		t.Errorf("a stack without files: %#v, %v", none, err)
	}

	// The files go with a deleted stack.
	steps = record(t, s, func() {
		gamma := s.newLane("gamma", "wp_one")
		gamma.stackCmd(stack.MountFile{Path: "a.txt", Size: 1, Ciphertext: []byte("x"), Actor: gamma.user, At: s.now()})
		gamma.stackCmd(stack.Delete{Actor: gamma.user, At: s.now()})
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)
	var n int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM rm_stack_files WHERE path = 'a.txt'").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d files of the deleted stack left (%v)", n, err)
	}
}
