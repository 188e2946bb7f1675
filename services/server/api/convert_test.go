package api

import (
	"testing"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// Every domain value has its own API enum value: a status added to the
// domain without one would show as UNSPECIFIED.
func TestEnumsCoverTheDomain(t *testing.T) {
	seen := map[gantryv1.RunState]run.Status{}
	for _, st := range run.Statuses() {
		got := runStateToProto(st)
		if got == gantryv1.RunState_RUN_STATE_UNSPECIFIED || got.String() != "RUN_STATE_"+string(st) {
			t.Errorf("status %s maps to %s", st, got)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("statuses %s and %s both map to %s", other, st, got)
		}
		seen[got] = st
	}
	if len(seen) != len(gantryv1.RunState_name)-1 {
		t.Errorf("%d run statuses for %d API states", len(seen), len(gantryv1.RunState_name)-1)
	}
	for _, typ := range []run.Type{run.Tracked, run.Proposed, run.Task} {
		if got := runTypeToProto(typ); got.String() != "RUN_TYPE_"+string(typ) {
			t.Errorf("run type %s maps to %s", typ, got)
		}
	}
	for _, st := range []worker.Status{worker.Idle, worker.Busy, worker.Drained, worker.Lost, worker.Exited} {
		if got := workerStatusToProto(st); got.String() != "WORKER_STATUS_"+string(st) {
			t.Errorf("worker status %s maps to %s", st, got)
		}
	}
	for _, a := range []workerpool.KeyAlgorithm{workerpool.RSA, workerpool.ECDSA} {
		if got := keyAlgorithmToProto(a); got.String() != "KEY_ALGORITHM_"+string(a) {
			t.Errorf("key algorithm %s maps to %s", a, got)
		}
	}
	for _, sc := range []stack.Scope{stack.ScopeAll, stack.ScopeReadOnly, stack.ScopeWriteOnly} {
		if got := scopeToProto(sc); got.String() != "ENV_SCOPE_"+string(sc) {
			t.Errorf("scope %s maps to %s", sc, got)
		}
	}
	for _, tool := range []stack.Tool{stack.Terraform, stack.OpenTofu} {
		back, err := toolFromProto(toolToProto(tool))
		if err != nil || back != tool {
			t.Errorf("tool %s round-trips to %s, %v", tool, back, err)
		}
	}
}

func TestStackChangeAppliesOnlyTheMaskedFields(t *testing.T) {
	req := &gantryv1.UpdateStackRequest{
		Name: "new", Branch: "dev", Tool: gantryv1.Tool_TOOL_TOFU, Description: "ignored",
		Hooks: &gantryv1.Hooks{AfterRun: []string{"echo done"}},
	}
	req.UpdateMask = maskOf("name", "branch", "tool", "hooks")
	change, err := stackChange(req)
	if err != nil {
		t.Fatal(err)
	}
	s := stack.Settings{Name: "old", Branch: "main", Description: "kept", Tool: stack.Terraform, Labels: []string{"a"}}
	change(&s)
	if s.Name != "new" || s.Branch != "dev" || s.Tool != stack.OpenTofu || s.Description != "kept" ||
		len(s.Labels) != 1 || len(s.Hooks.AfterRun) != 1 {
		t.Errorf("after the change: %+v", s)
	}
	req.Tool = 99
	if _, err := stackChange(req); err == nil {
		t.Error("an unknown tool in the mask was accepted")
	}
	req.Tool = 99
	req.UpdateMask = maskOf("branch")
	if _, err := stackChange(req); err != nil {
		t.Errorf("an unknown tool outside the mask was refused: %v", err)
	}
}

func maskOf(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

// A launcher is flagged only when both versions are semantic versions and
// the launcher's is the older one.
func TestLauncherOutdated(t *testing.T) {
	for _, tc := range []struct {
		launcher, server string
		want             bool
	}{
		{"v1.3.9", "v1.4.0", true},
		{"v1.4.0", "v1.4.0", false},
		{"v1.5.0", "v1.4.0", false},
		{"v1.4.0-rc.1", "v1.4.0", true},
		{"v0.0.0-20260101000000-abcdefabcdef", "v1.4.0", true}, // a pseudo-version is a pre-release
		{"(devel)", "v1.4.0", false},
		{"v1.3.0", "(devel)", false},
		{"", "v1.4.0", false},
		{"v1.3.0", "", false},
		{"1.3.0", "v1.4.0", false}, // not a Go module version
	} {
		if got := launcherOutdated(tc.launcher, tc.server); got != tc.want {
			t.Errorf("launcherOutdated(%q, %q) = %v, want %v", tc.launcher, tc.server, got, tc.want)
		}
	}
}
