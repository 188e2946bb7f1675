package main

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// TestBadInputWritesNothing sends every write call bad input and checks the
// code, that the message names what is wrong, and that no event was written.
func TestBadInputWritesNothing(t *testing.T) {
	srv := startServer(t)
	admin := srv.as(srv.adminToken(t))
	repo, _ := gitRepo(t)
	ctx := testCtx(t)

	// Fixtures the calls refer to.
	if _, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "ok", RepositoryUrl: repo})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "nowhere", RepositoryUrl: "file:///nonexistent/repo"})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "nobranch", RepositoryUrl: repo, Branch: "feature"})); err != nil {
		t.Fatal(err)
	}
	queuedRun := trigger(t, admin, "ok", tracked)
	canceledRun := trigger(t, admin, "ok", proposed)
	if _, err := admin.runs.CancelRun(ctx, connect.NewRequest(&gantryv1.CancelRunRequest{Run: canceledRun.GetId()})); err != nil {
		t.Fatal(err)
	}
	goodCSR, _ := rsaCSR(t, 2048)
	weakCSR, _ := rsaCSR(t, 1024)
	pool, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "pool", Csr: goodCSR}))
	if err != nil {
		t.Fatal(err)
	}
	poolID := pool.Msg.GetPool().GetId()
	const sha = "0123456789abcdef0123456789abcdef01234567"
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

	tests := []struct {
		name     string
		call     func(context.Context) error
		code     connect.Code
		contains string
	}{
		// StackService
		{"create: empty name", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{RepositoryUrl: repo}))
			return err
		}, connect.CodeInvalidArgument, "name: must not be empty"},
		{"create: bad repository and project root", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "x", RepositoryUrl: "ftp://host/repo", ProjectRoot: "../up"}))
			return err
		}, connect.CodeInvalidArgument, "repository_url"},
		{"create: project root escaping", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "x", RepositoryUrl: repo, ProjectRoot: "../up"}))
			return err
		}, connect.CodeInvalidArgument, "project_root"},
		{"create: unknown tool", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "x", RepositoryUrl: repo, Tool: 42}))
			return err
		}, connect.CodeInvalidArgument, "tool"},
		{"create: name like an id", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "stk_x", RepositoryUrl: repo}))
			return err
		}, connect.CodeInvalidArgument, "name"},
		{"create: name taken, other case", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "OK", RepositoryUrl: repo}))
			return err
		}, connect.CodeAlreadyExists, `"OK" is taken`},
		{"create: unknown pool", func(ctx context.Context) error {
			_, err := admin.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "x", RepositoryUrl: repo, WorkerPoolId: "nope"}))
			return err
		}, connect.CodeInvalidArgument, "worker_pool_id"},
		{"update: no mask", func(ctx context.Context) error {
			_, err := admin.stacks.UpdateStack(ctx, connect.NewRequest(&gantryv1.UpdateStackRequest{Stack: "ok", Branch: "dev"}))
			return err
		}, connect.CodeInvalidArgument, "update_mask"},
		{"update: unknown mask path", func(ctx context.Context) error {
			_, err := admin.stacks.UpdateStack(ctx, connect.NewRequest(&gantryv1.UpdateStackRequest{Stack: "ok", UpdateMask: mask("managed_state")}))
			return err
		}, connect.CodeInvalidArgument, "update_mask"},
		{"update: bad branch", func(ctx context.Context) error {
			_, err := admin.stacks.UpdateStack(ctx, connect.NewRequest(&gantryv1.UpdateStackRequest{Stack: "ok", Branch: "a..b", UpdateMask: mask("branch")}))
			return err
		}, connect.CodeInvalidArgument, "branch"},
		{"update: unknown stack", func(ctx context.Context) error {
			_, err := admin.stacks.UpdateStack(ctx, connect.NewRequest(&gantryv1.UpdateStackRequest{Stack: "ghost", Branch: "dev", UpdateMask: mask("branch")}))
			return err
		}, connect.CodeNotFound, "ghost"},
		{"delete: unknown stack", func(ctx context.Context) error {
			_, err := admin.stacks.DeleteStack(ctx, connect.NewRequest(&gantryv1.DeleteStackRequest{Stack: "ghost"}))
			return err
		}, connect.CodeNotFound, "ghost"},
		{"delete: stack in use", func(ctx context.Context) error {
			_, err := admin.stacks.DeleteStack(ctx, connect.NewRequest(&gantryv1.DeleteStackRequest{Stack: "ok"}))
			return err
		}, connect.CodeFailedPrecondition, "in use"},
		{"lock: note with control characters", func(ctx context.Context) error {
			_, err := admin.stacks.LockStack(ctx, connect.NewRequest(&gantryv1.LockStackRequest{Stack: "ok", Note: "a\x1b[2Jb"}))
			return err
		}, connect.CodeInvalidArgument, "note"},
		{"lock: no stack", func(ctx context.Context) error {
			_, err := admin.stacks.LockStack(ctx, connect.NewRequest(&gantryv1.LockStackRequest{}))
			return err
		}, connect.CodeInvalidArgument, "stack"},
		{"unlock: unknown stack id", func(ctx context.Context) error {
			_, err := admin.stacks.UnlockStack(ctx, connect.NewRequest(&gantryv1.UnlockStackRequest{Stack: "stk_ghost"}))
			return err
		}, connect.CodeNotFound, "not found"},
		{"env set: bad key", func(ctx context.Context) error {
			_, err := admin.stacks.SetStackEnv(ctx, connect.NewRequest(&gantryv1.SetStackEnvRequest{Stack: "ok", Key: "1BAD", Value: "v"}))
			return err
		}, connect.CodeInvalidArgument, "key"},
		{"env set: reserved secret key", func(ctx context.Context) error {
			_, err := admin.stacks.SetStackEnv(ctx, connect.NewRequest(&gantryv1.SetStackEnvRequest{Stack: "ok", Key: "GANTRY_X", Value: "v", Secret: true}))
			return err
		}, connect.CodeInvalidArgument, "key"},
		{"env set: NUL in value", func(ctx context.Context) error {
			_, err := admin.stacks.SetStackEnv(ctx, connect.NewRequest(&gantryv1.SetStackEnvRequest{Stack: "ok", Key: "K", Value: "a\x00b"}))
			return err
		}, connect.CodeInvalidArgument, "value"},
		{"env delete: unknown key", func(ctx context.Context) error {
			_, err := admin.stacks.DeleteStackEnv(ctx, connect.NewRequest(&gantryv1.DeleteStackEnvRequest{Stack: "ok", Key: "NOPE"}))
			return err
		}, connect.CodeNotFound, "NOPE"},

		// RunService
		{"trigger: task type", func(ctx context.Context) error {
			_, err := admin.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "ok", Type: gantryv1.RunType_RUN_TYPE_TASK}))
			return err
		}, connect.CodeInvalidArgument, "type"},
		{"trigger: short commit", func(ctx context.Context) error {
			_, err := admin.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "ok", Commit: "abc123"}))
			return err
		}, connect.CodeInvalidArgument, "commit"},
		{"trigger: unknown stack", func(ctx context.Context) error {
			_, err := admin.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "ghost", Commit: sha}))
			return err
		}, connect.CodeNotFound, "ghost"},
		{"trigger: unreachable repository", func(ctx context.Context) error {
			_, err := admin.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "nowhere"}))
			return err
		}, connect.CodeFailedPrecondition, "repository_url"},
		{"trigger: unknown branch", func(ctx context.Context) error {
			_, err := admin.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "nobranch"}))
			return err
		}, connect.CodeFailedPrecondition, "branch"},
		{"task: no command", func(ctx context.Context) error {
			_, err := admin.runs.TriggerTask(ctx, connect.NewRequest(&gantryv1.TriggerTaskRequest{Stack: "ok", Commit: sha}))
			return err
		}, connect.CodeInvalidArgument, "command: must not be empty"},
		{"confirm: malformed id", func(ctx context.Context) error {
			_, err := admin.runs.ConfirmRun(ctx, connect.NewRequest(&gantryv1.ConfirmRunRequest{Run: "stk_nope"}))
			return err
		}, connect.CodeInvalidArgument, "run"},
		{"confirm: queued run", func(ctx context.Context) error {
			_, err := admin.runs.ConfirmRun(ctx, connect.NewRequest(&gantryv1.ConfirmRunRequest{Run: queuedRun.GetId()}))
			return err
		}, connect.CodeFailedPrecondition, "READY"},
		{"discard: unknown run", func(ctx context.Context) error {
			_, err := admin.runs.DiscardRun(ctx, connect.NewRequest(&gantryv1.DiscardRunRequest{Run: "run_ghost"}))
			return err
		}, connect.CodeNotFound, "run_ghost"},
		{"cancel: already canceled", func(ctx context.Context) error {
			_, err := admin.runs.CancelRun(ctx, connect.NewRequest(&gantryv1.CancelRunRequest{Run: canceledRun.GetId()}))
			return err
		}, connect.CodeFailedPrecondition, "CANCELED"},
		{"stop: run not started", func(ctx context.Context) error {
			_, err := admin.runs.StopRun(ctx, connect.NewRequest(&gantryv1.StopRunRequest{Run: queuedRun.GetId(), Note: "stop"}))
			return err
		}, connect.CodeFailedPrecondition, "READY"},

		// WorkerPoolService
		{"pool create: no CSR", func(ctx context.Context) error {
			_, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "p"}))
			return err
		}, connect.CodeInvalidArgument, "csr"},
		{"pool create: not a CSR", func(ctx context.Context) error {
			_, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "p", Csr: "hello"}))
			return err
		}, connect.CodeInvalidArgument, "csr"},
		{"pool create: weak key", func(ctx context.Context) error {
			_, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "p", Csr: weakCSR}))
			return err
		}, connect.CodeInvalidArgument, "csr"},
		{"pool create: no name", func(ctx context.Context) error {
			_, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Csr: goodCSR}))
			return err
		}, connect.CodeInvalidArgument, "name"},
		{"pool create: name taken", func(ctx context.Context) error {
			_, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "POOL", Csr: goodCSR}))
			return err
		}, connect.CodeAlreadyExists, "POOL"},
		{"pool create: negative drift limit", func(ctx context.Context) error {
			_, err := admin.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "p", Csr: goodCSR, DriftDetectionRunLimit: -1}))
			return err
		}, connect.CodeInvalidArgument, "drift_detection_run_limit"},
		{"pool reset: unknown pool", func(ctx context.Context) error {
			_, err := admin.pools.ResetWorkerPool(ctx, connect.NewRequest(&gantryv1.ResetWorkerPoolRequest{Pool: "ghost", Csr: goodCSR}))
			return err
		}, connect.CodeNotFound, "ghost"},
		{"pool reset: weak key", func(ctx context.Context) error {
			_, err := admin.pools.ResetWorkerPool(ctx, connect.NewRequest(&gantryv1.ResetWorkerPoolRequest{Pool: poolID, Csr: weakCSR}))
			return err
		}, connect.CodeInvalidArgument, "csr"},
		{"pool cycle: unknown pool", func(ctx context.Context) error {
			_, err := admin.pools.CyclePool(ctx, connect.NewRequest(&gantryv1.CyclePoolRequest{Pool: "wp_ghost"}))
			return err
		}, connect.CodeNotFound, "not found"},
		{"drain: malformed worker id", func(ctx context.Context) error {
			_, err := admin.pools.DrainWorker(ctx, connect.NewRequest(&gantryv1.DrainWorkerRequest{Pool: poolID, Worker: "run_x"}))
			return err
		}, connect.CodeInvalidArgument, "worker"},
		{"drain: unknown worker", func(ctx context.Context) error {
			_, err := admin.pools.DrainWorker(ctx, connect.NewRequest(&gantryv1.DrainWorkerRequest{Pool: poolID, Worker: "wkr_ghost"}))
			return err
		}, connect.CodeNotFound, "wkr_ghost"},
		{"undrain: unknown pool", func(ctx context.Context) error {
			_, err := admin.pools.UndrainWorker(ctx, connect.NewRequest(&gantryv1.UndrainWorkerRequest{Pool: "ghost", Worker: "wkr_ghost"}))
			return err
		}, connect.CodeNotFound, "ghost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.eventCount(t)
			err := tt.call(testCtx(t))
			t.Log(err)
			if connect.CodeOf(err) != tt.code {
				t.Fatalf("error %v, want code %v", err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if after := srv.eventCount(t); after != before {
				t.Errorf("the refused call wrote %d events", after-before)
			}
		})
	}
}
