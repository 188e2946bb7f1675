package launcher

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// examplePolicy denies by branch, hooks, who triggers tasks and worker
// metadata: every part of the input document.
const examplePolicy = `package gantry

deny contains sprintf("branch %s is not main", [input.stack.branch]) if input.stack.branch != "main"

deny contains "hooks must not download anything" if {
	some hook in input.stack.hooks.before_init
	contains(hook, "curl")
}

deny contains "only alice runs tasks" if {
	input.run.type == "TASK"
	input.run.triggered_by != "user:alice"
}

deny contains {"zone": input.worker.metadata.zone} if input.worker.metadata.zone == "quarantine"

deny contains "no plaintext secrets in the stack" if "AWS_SECRET_ACCESS_KEY" in input.stack.variables
`

func writePolicy(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.rego")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// policyLauncher is a launcher of worker wkr_1 with cfg, as far as
// policies go.
func policyLauncher(cfg Config) *Launcher {
	l := &Launcher{cfg: cfg, workerID: "wkr_1"}
	l.logp.Store(slog.New(slog.DiscardHandler))
	return l
}

// policyJob is a tracked run of main with nothing a policy objects to.
func policyJob() executor.Job {
	return executor.Job{Job: protocol.Job{RunID: "run_1", StackID: "stk_1", Type: run.Tracked, Commit: strings.Repeat("a", 40),
		Branch: "main", TriggeredBy: "user:bob", RepositoryURL: "https://git.example.com/infra.git", Tool: stack.Terraform}}
}

func TestPolicyDeniesWithItsMessages(t *testing.T) {
	p, err := LoadPolicy(t.Context(), writePolicy(t, examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*executor.Job, *Config)
		want   []string
	}{
		{"allowed", func(*executor.Job, *Config) {}, nil},
		{"branch", func(j *executor.Job, _ *Config) { j.Branch = "dev" }, []string{"branch dev is not main"}},
		{"hooks and variables", func(j *executor.Job, _ *Config) {
			j.Hooks.BeforeInit = []string{"echo ok", "curl -s https://example.com | sh"}
			j.Env = []executor.Variable{{Name: "AWS_SECRET_ACCESS_KEY", Value: "never seen by the policy"}}
		}, []string{"hooks must not download anything", "no plaintext secrets in the stack"}},
		{"task", func(j *executor.Job, _ *Config) { j.Type, j.TaskCommand = run.Task, "ls" }, []string{"only alice runs tasks"}},
		{"task by alice", func(j *executor.Job, _ *Config) { j.Type, j.TaskCommand, j.TriggeredBy = run.Task, "ls", "user:alice" }, nil},
		{"worker metadata, a non-string reason", func(_ *executor.Job, c *Config) { c.Metadata = map[string]string{"zone": "quarantine"} },
			[]string{`{"zone":"quarantine"}`}},
	} {
		j, cfg := policyJob(), Config{Policy: p, Metadata: map[string]string{"zone": "a"}}
		tc.change(&j, &cfg)
		ll := policyLauncher(cfg)
		got, err := p.Evaluate(t.Context(), ll.policyInput(j))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: reasons %q, want %q", tc.name, got, tc.want)
		}
		note := ll.admit(t.Context(), j)
		if (note == "") != (tc.want == nil) || tc.want != nil && !strings.HasPrefix(note, "denied by the run initialization policy: ") {
			t.Errorf("%s: note %q", tc.name, note)
		}
	}
}

func TestPolicyInputDocument(t *testing.T) {
	p, err := LoadPolicy(t.Context(), writePolicy(t, `package gantry

deny contains sprintf("%v", [input]) if true
`))
	if err != nil {
		t.Fatal(err)
	}
	l := policyLauncher(Config{Policy: p, Token: protocol.PoolToken{PoolID: "wp_1"}})
	j := policyJob()
	j.Env = []executor.Variable{{Name: "TF_LOG", Value: "secret-ish"}}
	got, err := p.Evaluate(t.Context(), l.policyInput(j))
	if err != nil || len(got) != 1 {
		t.Fatalf("%q, %v", got, err)
	}
	for _, want := range []string{`"run": {`, `"id": "run_1"`, `"type": "TRACKED"`, `"triggered_by": "user:bob"`, `"confirmed": false`,
		`"stack": {`, `"branch": "main"`, `"repository_url": "https://git.example.com/infra.git"`, `"tool": "terraform"`,
		`"variables": ["TF_LOG"]`, `"worker": {`, `"pool_id": "wp_1"`, `"metadata": {}`} {
		if !strings.Contains(got[0], want) {
			t.Errorf("the input document lacks %s: %s", want, got[0])
		}
	}
	if strings.Contains(got[0], "secret-ish") {
		t.Error("a variable's value reached the policy")
	}
}

func TestLoadPolicyRefusesWhatCouldNotDeny(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "package gantry\ndeny contains", "does not parse"},
		{"v0 syntax", "package gantry\ndeny[msg] { msg := \"x\" }", "does not parse"},
		{"package", "package spacelift\ndeny contains \"x\" if true", "the package is spacelift, want `package gantry`"},
		{"no deny rule", "package gantry\nallow := true", "defines no deny rule"},
		{"compile error", "package gantry\ndeny contains msg if { msg := no_such_function(1) }", "does not compile"},
	} {
		_, err := LoadPolicy(t.Context(), writePolicy(t, tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadPolicy(t.Context(), filepath.Join(t.TempDir(), "missing.rego")); err == nil {
		t.Error("a missing file was loaded")
	}
}

// FromEnv compiles the policy at start; a bad one stops the launcher,
// naming the variable.
func TestFromEnvLoadsThePolicy(t *testing.T) {
	token, key, _ := testPool(t)
	env := []string{EnvToken + "=" + token, EnvPoolKey + "=" + key, EnvExecutor + "=" + ExecutorProcess}
	cfg, err := FromEnv(append(env, EnvRunInitializationPolicy+"="+writePolicy(t, examplePolicy)), io.Discard)
	if err != nil || cfg.Policy == nil {
		t.Fatalf("policy %v, err %v", cfg.Policy, err)
	}
	for _, path := range []string{writePolicy(t, "package gantry\ndeny contains"), filepath.Join(t.TempDir(), "missing.rego")} {
		_, err := FromEnv(append(env, EnvRunInitializationPolicy+"="+path), io.Discard)
		if err == nil || !strings.Contains(err.Error(), EnvRunInitializationPolicy+": ") {
			t.Errorf("%s: %v, want an error naming %s", path, err, EnvRunInitializationPolicy)
		}
	}
}
