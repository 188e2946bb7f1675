package launcher

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// EnvRunInitializationPolicy names a Rego file the launcher evaluates
// against each run's metadata before the run's first phase.
var EnvRunInitializationPolicy = settings.LauncherRunInitializationPolicy.Name

// The run initialization policy's convention: a Rego (v1 syntax) module of
// package PolicyPackage whose rule PolicyRule is the set of reasons to deny
// the run. An empty set lets the run go on.
const (
	PolicyPackage = "gantry"
	PolicyRule    = "deny"
	// policyTimeout bounds one evaluation.
	policyTimeout = 10 * time.Second
)

// Policy is a compiled run initialization policy.
type Policy struct {
	path  string
	query rego.PreparedEvalQuery
}

// LoadPolicy reads and compiles the policy in the file at path. A file
// that cannot be read, does not compile, is not of package gantry or has no
// deny rule is refused: a policy that could never deny would be a silent
// misconfiguration.
func LoadPolicy(ctx context.Context, path string) (*Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	module, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("%s does not parse: %w", path, err)
	}
	if got := strings.TrimPrefix(module.Package.Path.String(), "data."); got != PolicyPackage {
		return nil, fmt.Errorf("%s: the package is %s, want `package %s`", path, got, PolicyPackage)
	}
	hasRule := false
	for _, r := range module.Rules {
		hasRule = hasRule || r.Head.Ref().String() == PolicyRule
	}
	if !hasRule {
		return nil, fmt.Errorf("%s defines no %s rule (`%s contains msg if { … }`)", path, PolicyRule, PolicyRule)
	}
	query, err := rego.New(
		rego.Query("data."+PolicyPackage+"."+PolicyRule),
		rego.ParsedModule(module),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s does not compile: %w", path, err)
	}
	return &Policy{path: path, query: query}, nil
}

// PolicyInput is the input document a policy sees: the run's metadata as
// the worker has it. Documented in docs/workers.md.
type PolicyInput struct {
	Run    PolicyRun    `json:"run"`
	Stack  PolicyStack  `json:"stack"`
	Worker PolicyWorker `json:"worker"`
}

// PolicyRun is input.run.
type PolicyRun struct {
	ID          string   `json:"id"`
	Type        run.Type `json:"type"`
	Commit      string   `json:"commit"`
	TaskCommand string   `json:"task_command"`
	// Confirmed: the apply of a confirmed plan (PREPARING_APPLY comes
	// first, not PREPARING).
	Confirmed   bool   `json:"confirmed"`
	Autodeploy  bool   `json:"autodeploy"`
	TriggeredBy string `json:"triggered_by"`
}

// PolicyStack is input.stack.
type PolicyStack struct {
	ID            string      `json:"id"`
	RepositoryURL string      `json:"repository_url"`
	Branch        string      `json:"branch"`
	ProjectRoot   string      `json:"project_root"`
	Tool          stack.Tool  `json:"tool"`
	RunnerImage   string      `json:"runner_image"`
	ManagedState  bool        `json:"managed_state"`
	Hooks         stack.Hooks `json:"hooks"`
	// Variables are the names of the stack's variables, never their values.
	Variables []string `json:"variables"`
}

// PolicyWorker is input.worker.
type PolicyWorker struct {
	ID       string            `json:"id"`
	PoolID   string            `json:"pool_id"`
	Metadata map[string]string `json:"metadata"`
}

// Evaluate returns the policy's reasons to deny a run with input; none
// lets it go on. A non-string reason is given as its JSON.
func (p *Policy) Evaluate(ctx context.Context, input PolicyInput) ([]string, error) {
	// The JSON form, so that Rego sees the documented field names.
	data, err := json.Marshal(input)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, policyTimeout)
	defer cancel()
	rs, err := p.query.Eval(ctx, rego.EvalInput(doc))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", p.path, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil // undefined: nothing denies
	}
	set, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("evaluate %s: %s is a %T, want a set of messages", p.path, PolicyRule, rs[0].Expressions[0].Value)
	}
	reasons := make([]string, 0, len(set))
	for _, v := range set {
		if s, ok := v.(string); ok {
			reasons = append(reasons, s)
			continue
		}
		b, _ := json.Marshal(v)
		reasons = append(reasons, string(b))
	}
	return reasons, nil
}

// policyInput is the input document of job on this worker.
func (l *Launcher) policyInput(job executor.Job) PolicyInput {
	in := PolicyInput{
		Run: PolicyRun{ID: job.RunID, Type: job.Type, Commit: job.Commit, TaskCommand: job.TaskCommand, Confirmed: job.Confirmed,
			Autodeploy: job.Autodeploy, TriggeredBy: job.TriggeredBy},
		Stack: PolicyStack{ID: job.StackID, RepositoryURL: job.RepositoryURL, Branch: job.Branch, ProjectRoot: job.ProjectRoot,
			Tool: job.Tool, RunnerImage: job.RunnerImage, ManagedState: job.ManagedState, Hooks: job.Hooks, Variables: []string{}},
		Worker: PolicyWorker{ID: l.WorkerID(), PoolID: l.cfg.Token.PoolID, Metadata: l.cfg.Metadata},
	}
	for _, v := range job.Env {
		in.Stack.Variables = append(in.Stack.Variables, v.Name)
	}
	if in.Worker.Metadata == nil {
		in.Worker.Metadata = map[string]string{}
	}
	return in
}

// admit evaluates the launcher's run initialization policy, if it has one,
// for job. It returns "" when the run may go on, else the note that fails
// it: the policy's reasons, or why it could not be evaluated.
func (l *Launcher) admit(ctx context.Context, job executor.Job) string {
	if l.cfg.Policy == nil {
		return ""
	}
	reasons, err := l.cfg.Policy.Evaluate(ctx, l.policyInput(job))
	var note string
	switch {
	case err != nil:
		note = "the run initialization policy could not be evaluated: " + err.Error()
	case len(reasons) > 0:
		note = "denied by the run initialization policy: " + strings.Join(reasons, "; ")
	default:
		return ""
	}
	l.logger().Warn("run refused by the run initialization policy", "run_id", job.RunID, "stack_id", job.StackID, "note", note)
	if r := []rune(note); len(r) > run.MaxNoteLength {
		note = string(r[:run.MaxNoteLength-1]) + "…"
	}
	return note
}
