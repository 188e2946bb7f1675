package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/projections"
)

func statuses(h []projections.RunHistoryEntry) []run.Status {
	out := make([]run.Status, len(h))
	for i, e := range h {
		out[i] = e.Status
	}
	return out
}

func TestRunsProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("rn")
	var alpha *lane
	var confirmed, stopped, task string
	steps := record(t, s, func() {
		s.createPool("wp_one", "one")
		alpha = s.newLane("alpha", "wp_one")
		confirmed = alpha.scenario(1) // tracked, confirmed, applied
		stopped = alpha.scenario(6)   // stopped while planning
		task = alpha.scenario(4)      // task
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	r, err := e.q.GetRun(ctx, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	want := []run.Status{run.Queued, run.Ready, run.Preparing, run.Initializing, run.Planning, run.Unconfirmed,
		run.Confirmed, run.PreparingApply, run.Applying, run.Finished}
	if !slices.Equal(statuses(r.History), want) {
		t.Errorf("history = %v, want %v", statuses(r.History), want)
	}
	for i, h := range r.History {
		if h.Seq != i+1 || h.At.IsZero() || h.Actor == "" {
			t.Errorf("history entry %d = %+v", i, h)
		}
	}
	if r.History[6].Actor != alpha.user || r.History[2].Actor != alpha.workerID {
		t.Errorf("actors: confirmed by %s, prepared by %s", r.History[6].Actor, r.History[2].Actor)
	}
	if r.Status != run.Finished || r.Type != run.Tracked || r.StackID != alpha.stackID || r.WorkerID != "" || r.PoolID != "wp_one" ||
		!r.HasChanges || r.Commit != commitSHA || r.TriggeredBy != alpha.user || r.HoldsLock || r.StopRequested() {
		t.Errorf("run = %+v", r)
	}
	wantOutputs := []projections.RunOutput{
		{Name: "id", Type: json.RawMessage(`"string"`), Value: json.RawMessage(`"i-123"`)},
		{Name: "password", Sensitive: true, Type: json.RawMessage(`"string"`), Sealed: true},
		{Name: "token", Sensitive: true},
	}
	if !reflect.DeepEqual(r.Outputs, wantOutputs) {
		t.Errorf("outputs = %+v, want %+v", r.Outputs, wantOutputs)
	}
	if r.Version != s.versions[confirmed] || !r.CreatedAt.Equal(r.History[0].At) || !r.UpdatedAt.Equal(r.History[9].At) {
		t.Errorf("version %d (stream %d), created %v, updated %v", r.Version, s.versions[confirmed], r.CreatedAt, r.UpdatedAt)
	}
	if r.Plan == nil || *r.Plan != (run.PlanSummary{Add: 2, Change: 1}) {
		t.Errorf("plan summary %+v, want the one reported with the plan", r.Plan)
	}
	// Each phase's entry names the worker that ran it, also once the run
	// has let go of it; the others name none.
	for _, h := range r.History {
		var want string
		switch h.Status {
		case run.Preparing, run.Initializing, run.Planning, run.Unconfirmed, run.PreparingApply, run.Applying, run.Finished:
			want = alpha.workerID
		}
		if h.WorkerID != want {
			t.Errorf("history entry %s names worker %q, want %q", h.Status, h.WorkerID, want)
		}
	}

	st, err := e.q.GetRun(ctx, stopped)
	if err != nil {
		t.Fatal(err)
	}
	last := st.History[len(st.History)-1]
	if st.Status != run.Stopped || st.StopRequestedBy != alpha.user || last.Status != run.Stopped || last.Note != "stop requested by "+alpha.user {
		t.Errorf("stopped run = %+v, last entry %+v", st, last)
	}
	if st.StopNote != "wrong commit" || st.Plan != nil || last.WorkerID != alpha.workerID {
		t.Errorf("stopped run: stop note %q, plan %+v, stopped on worker %q", st.StopNote, st.Plan, last.WorkerID)
	}
	tk, err := e.q.GetRun(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Outputs != nil {
		t.Errorf("outputs of a run that recorded none: %+v", tk.Outputs)
	}
	if tk.Type != run.Task || tk.TaskCommand == "" || !slices.Contains(statuses(tk.History), run.Performing) || tk.Status != run.Finished {
		t.Errorf("task = %+v", tk)
	}
	if _, err := e.q.GetRun(ctx, "run_nope"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("missing run: err = %v, want ErrNotFound", err)
	}

	// Newest first, a page at a time.
	var got []string
	token := ""
	for range 4 {
		page, next, err := e.q.ListRuns(ctx, alpha.stackID, token, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			got = append(got, v.ID)
			if v.History != nil {
				t.Errorf("ListRuns returned the history of %s", v.ID)
			}
		}
		if token = next; token == "" {
			break
		}
	}
	if w := []string{task, stopped, confirmed}; !slices.Equal(got, w) {
		t.Errorf("runs = %v, want %v", got, w)
	}
	_, first, err := e.q.ListRuns(ctx, alpha.stackID, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.q.ListRuns(ctx, "stk_other", first, 1); !errors.Is(err, projections.ErrInvalidPageToken) {
		t.Errorf("another stack's token: err = %v, want ErrInvalidPageToken", err)
	}
}

func TestPoolQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("pq")
	var q, q2, q3, mover *lane
	var inProgress, blocked, drift, proposed, ready, confirmed, proposed2, moved, done string
	steps := record(t, s, func() {
		s.createPool("wp_one", "one")
		s.createPool("wp_two", "two")
		q = s.newLane("queue", "wp_one")
		q2 = s.newLane("queue2", "wp_one")
		q3 = s.newLane("queue3", "wp_one")
		mover = s.newLane("mover", "wp_one")

		inProgress = q.trigger(run.Tracked, false) // holds q's lock
		q.assign(inProgress)
		q.start(inProgress, run.PhasePreparing)
		blocked = q.trigger(run.Tracked, false) // waits for q's lock: QUEUED
		drift = q.trigger(run.Proposed, true)
		confirmed = q3.trigger(run.Tracked, false)
		q3.plan(confirmed, 0, true)
		q3.do(confirmed, run.Confirm{Actor: q3.user, At: s.now()})
		proposed = q.trigger(run.Proposed, false)
		ready = q2.trigger(run.Tracked, false)
		proposed2 = q2.trigger(run.Proposed, false)
		moved = mover.trigger(run.Proposed, false)
		done = mover.trigger(run.Proposed, false)
		mover.assign(done)
		mover.do(done, run.Fail{Note: "worker lost", Actor: "system:scheduler", At: s.now()})
		settings := mover.stacks[mover.stackID].Settings()
		settings.WorkerPoolID = "wp_two"
		mover.stackCmd(stack.UpdateSettings{Settings: settings, Actor: mover.user, At: s.now()})
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	entries, err := e.q.PoolQueue(ctx, "wp_one")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		got = append(got, en.RunID)
	}
	// In progress first; then tracked runs by age (the confirmed run waits
	// for a worker to apply), then proposed, then drift detection. The
	// queued run behind the lock and ended runs are not schedulable.
	want := []string{inProgress, confirmed, ready, proposed, proposed2, drift}
	if !slices.Equal(got, want) {
		t.Fatalf("queue = %v, want %v (blocked %s)", got, want, blocked)
	}
	if e0 := entries[0]; !e0.InProgress || e0.WorkerID != q.workerID || e0.Status != run.Preparing || e0.StackName != "queue" {
		t.Errorf("in progress entry = %+v", e0)
	}
	if e1 := entries[1]; e1.InProgress || e1.Status != run.Confirmed || e1.WorkerID != "" || e1.StackName != "queue3" {
		t.Errorf("confirmed entry = %+v", e1)
	}
	if d := entries[5]; !d.Drift || d.Type != run.Proposed {
		t.Errorf("drift entry = %+v", d)
	}

	// A waiting run follows its stack to the new pool; an ended one stays.
	two, err := e.q.PoolQueue(ctx, "wp_two")
	if err != nil {
		t.Fatal(err)
	}
	if len(two) != 1 || two[0].RunID != moved || two[0].StackName != "mover" {
		t.Errorf("queue of wp_two = %+v, want %s", two, moved)
	}
	d, err := e.q.GetRun(ctx, done)
	if err != nil {
		t.Fatal(err)
	}
	if d.PoolID != "wp_one" || d.Status != run.Failed {
		t.Errorf("ended run: pool %s, status %s", d.PoolID, d.Status)
	}
	if b, err := e.q.GetRun(ctx, blocked); err != nil || b.Status != run.Queued || b.HoldsLock {
		t.Errorf("blocked run = %+v, %v", b, err)
	}
	if r, err := e.q.GetRun(ctx, ready); err != nil || !r.HoldsLock {
		t.Errorf("ready run = %+v, %v", r, err)
	}
}
