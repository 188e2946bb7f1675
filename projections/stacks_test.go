package projections_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/projections"
)

func TestStacksProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("st")
	var alpha, beta, gamma *lane
	var r1, r2, r3 string
	steps := record(t, s, func() {
		s.createPool("wp_one", "one")
		s.createPool("wp_two", "two")
		alpha = s.newLane("alpha", "wp_one")
		beta = s.newLane("beta", "wp_one")
		gamma = s.newLane("gamma", "wp_two")
		alpha.stackCmd(stack.SetEnv{Key: "TF_VAR_region", Value: "eu-west-1", Actor: alpha.user, At: s.now()})
		alpha.stackCmd(stack.SetEnv{Key: "wo_TOKEN", Secret: true, Ciphertext: []byte("sealed-token"), Actor: alpha.user, At: s.now()})
		alpha.stackCmd(stack.SetEnv{Key: "ro_MODE", Value: "plan", Actor: alpha.user, At: s.now()})
		alpha.stackCmd(stack.SetEnv{Key: "GONE", Value: "x", Actor: alpha.user, At: s.now()})
		alpha.stackCmd(stack.DeleteEnv{Key: "GONE", Actor: alpha.user, At: s.now()})
		alpha.stackCmd(stack.Lock{Note: "maintenance", Actor: alpha.user, At: s.now()})
		r1 = alpha.trigger(run.Tracked, false)
		r2 = alpha.trigger(run.Task, false)
		r3 = alpha.trigger(run.Tracked, false)
		alpha.do(r3, run.Cancel{Note: "changed my mind", Actor: alpha.user, At: s.now()})
		settings := beta.stacks[beta.stackID].Settings()
		settings.Name, settings.WorkerPoolID, settings.Description = "beta-renamed", "wp_two", "moved"
		beta.stackCmd(stack.UpdateSettings{Settings: settings, Actor: beta.user, At: s.now()})
		gamma.stackCmd(stack.Delete{Actor: gamma.user, At: s.now()})
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	got, err := e.q.GetStack(ctx, "ALPHA")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != alpha.stackID || got.Name != "alpha" || got.WorkerPoolID != "wp_one" || got.Tool != stack.Terraform || got.Branch != "main" || !got.ManagedState {
		t.Errorf("alpha = %+v", got)
	}
	if got.Version != s.versions[alpha.stackID] {
		t.Errorf("version = %d, want the stream's %d", got.Version, s.versions[alpha.stackID])
	}
	if !slices.Equal(got.Labels, []string{"team:platform"}) || !slices.Equal(got.Hooks.BeforeInit, []string{"echo init"}) {
		t.Errorf("labels %v, hooks %+v", got.Labels, got.Hooks)
	}
	wantEnv := []projections.EnvVarView{
		{Key: "TF_VAR_region", Name: "TF_VAR_region", Scope: stack.ScopeAll, Value: "eu-west-1"},
		{Key: "ro_MODE", Name: "MODE", Scope: stack.ScopeReadOnly, Value: "plan"},
		{Key: "wo_TOKEN", Name: "TOKEN", Scope: stack.ScopeWriteOnly, Secret: true},
	}
	if !slices.Equal(got.Env, wantEnv) {
		t.Errorf("env = %+v, want %+v", got.Env, wantEnv)
	}
	if got.ManualLock == nil || got.ManualLock.Holder != alpha.user || got.ManualLock.Note != "maintenance" {
		t.Errorf("manual lock = %+v", got.ManualLock)
	}
	if got.LockHolderRunID != r1 || got.LockedAt == nil || !slices.Equal(got.QueuedRunIDs, []string{r2}) {
		t.Errorf("run lock %q at %v, queue %v; want %s holding, %s queued (%s canceled)", got.LockHolderRunID, got.LockedAt, got.QueuedRunIDs, r1, r2, r3)
	}
	if got.CreatedBy != alpha.user || !got.CreatedAt.Before(got.UpdatedAt) {
		t.Errorf("created %v by %s, updated %v", got.CreatedAt, got.CreatedBy, got.UpdatedAt)
	}

	// The ciphertext of a secret never reaches a read model.
	var leaks int
	if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rm_stack_env t WHERE t::text LIKE '%c2VhbGVk%' OR t::text LIKE '%sealed%')
		+ (SELECT count(*) FROM rm_stacks t WHERE t::text LIKE '%c2VhbGVk%' OR t::text LIKE '%sealed%')`).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Errorf("%d read-model rows hold the secret's ciphertext", leaks)
	}

	b, err := e.q.GetStack(ctx, beta.stackID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "beta-renamed" || b.WorkerPoolID != "wp_two" || b.Description != "moved" || b.ManualLock != nil || len(b.Env) != 0 {
		t.Errorf("beta = %+v", b)
	}
	if _, err := e.q.GetStack(ctx, "beta"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("old name: err = %v, want ErrNotFound", err)
	}
	if _, err := e.q.GetStack(ctx, gamma.stackID); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("deleted stack: err = %v, want ErrNotFound", err)
	}

	for pool, want := range map[string][]projections.StackRef{
		"wp_one":  {{ID: alpha.stackID, Name: "alpha"}},
		"wp_two":  {{ID: beta.stackID, Name: "beta-renamed"}},
		"wp_nope": {},
	} {
		refs, err := e.q.UsedBy(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(refs, want) {
			t.Errorf("used by %s = %v, want %v", pool, refs, want)
		}
	}
}

func TestListStacksPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("ls")
	names := []string{"delta", "Alpha", "charlie", "bravo", "echo"}
	steps := record(t, s, func() {
		s.createPool("wp_one", "one")
		for _, n := range names {
			s.newLane(n, "wp_one")
		}
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than stacks")
		}
		page, next, err := e.q.ListStacks(ctx, token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			got = append(got, v.Name)
		}
		if next == "" {
			break
		}
		token = next
	}
	// Byte order: upper case first.
	if want := []string{"Alpha", "bravo", "charlie", "delta", "echo"}; !slices.Equal(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
	all, next, err := e.q.ListStacks(ctx, "", 0)
	if err != nil || len(all) != 5 || next != "" {
		t.Errorf("default page: %d stacks, next %q, err %v", len(all), next, err)
	}

	_, firstNext, err := e.q.ListStacks(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"nope!", "bm9wZQ", firstNext + "x"} {
		if _, _, err := e.q.ListStacks(ctx, bad, 2); !errors.Is(err, projections.ErrInvalidPageToken) {
			t.Errorf("token %q: err = %v, want ErrInvalidPageToken", bad, err)
		}
	}
	// A stacks token does not page pools.
	if _, _, err := e.q.ListPools(ctx, firstNext, 2); !errors.Is(err, projections.ErrInvalidPageToken) {
		t.Errorf("stacks token for pools: err = %v, want ErrInvalidPageToken", err)
	}
}
