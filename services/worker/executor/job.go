package executor

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// Job describes one run, or the apply part of a confirmed run, as the
// executor runs it: the job the server sent (protocol.Job, as it came)
// beside what the launcher adds on this machine. Env hides the embedded
// protocol.Job.Env, whose secret values are sealed: the launcher opens them
// into Env, so the executor only ever reads variables in the clear.
//
// Confirmed marks the apply part of a confirmed TRACKED run: instead of
// cloning, the executor restores the workspace the planning worker saved
// (PREPARING_APPLY) and applies its saved plan (APPLYING). Autodeploy makes a
// TRACKED run with changes apply on the same worker right after planning
// instead of ending UNCONFIRMED. TaskCommand (TASK runs) runs with sh -c in
// the project root.
//
// The after_run hooks run once, at the end of the run, inside its last phase
// and before that phase's result is reported, so that their failure fails
// the run: after PLANNING when the plan ends the run (PROPOSED, no changes,
// or a failure), after APPLYING, PERFORMING, or the phase that failed. They
// do not run when PREPARING failed (there is no checkout), when the phase's
// variables could not be had (PhaseEnv), when the run ends UNCONFIRMED (the
// worker that applies runs them), or when the run was stopped, timed out or
// canceled.
type Job struct {
	protocol.Job
	// Env are the stack's variables (protocol.Job.Env), secrets opened,
	// with their scopes.
	Env []Variable
	// Files are the stack's mounted files (protocol.Job.Files), opened:
	// PREPARING writes them into the project root (see MountedFile).
	Files []MountedFile
	// Whitelist are the launcher's variables passed to runs
	// (GANTRY_WHITELIST_ENVS, see WhitelistVariables).
	Whitelist []Variable
	// PhaseEnv, if set, is called after a phase's start was reported and
	// before its first command, for INITIALIZING, PLANNING, APPLYING and
	// PERFORMING. Its variables (state backend credentials, typically) are
	// given to that phase only, whatever their scope; secret ones are masked
	// from then on.
	PhaseEnv func(ctx context.Context, phase run.Phase) ([]Variable, error)
	// SaveState, if set, stores a state the tool could not store itself:
	// the errored.tfstate an APPLYING or PERFORMING phase left in the
	// project root when the state backend stayed out of reach through all
	// of the tool's retries. It is called before the phase's result is
	// reported (the phase's state credentials still hold) and before the
	// workspace is removed; it returns a line for the phase's log saying
	// where the state went.
	SaveState func(ctx context.Context, phase run.Phase, state []byte) (string, error)
	// ReadState, if set, returns the stack's stored state as the phase's
	// credentials read it (nil: no state stored yet). The run's outputs are
	// then read from it after an APPLYING or PERFORMING, without a `<tool>
	// output -json` process, unless the state cannot be read or is not a
	// plain JSON state (an encrypted one, say): then the tool reads them.
	ReadState func(ctx context.Context, phase run.Phase) ([]byte, error)
	// BackendOverride, if not nil, is written to OverrideFile in the project
	// root (replacing a file of that name from the repository).
	BackendOverride []byte
	// MaskNames are names of variables (GANTRY_MASK_ENVS) whose values never
	// appear in logs, in addition to every secret variable's value.
	MaskNames []string
	// MaskValues are further values that never appear in logs.
	MaskValues []string
	// Debug prints every command the executor runs to the log ("+ terraform plan …").
	Debug bool
	// WorkerID is the worker running the job; the Docker executor labels
	// its containers with it.
	WorkerID string
	// Git, if not nil, are the credentials the repository is cloned with
	// (protocol.Job.GitCredentials, opened). They reach git through its
	// environment only: never its command line, the log or .git/config.
	Git *protocol.GitCredentials
	// OutputsKey, if set, is the key sensitive outputs' values are sealed
	// to (the server's: see outputs.go); nil leaves them out.
	OutputsKey crypto.PublicKey
}

// OverrideFile is the name of the backend override file in the project root.
// Terraform reads files ending in _override.tf last and merges them over the
// rest of the configuration.
const OverrideFile = tfbackend.OverrideFileName

// Variable is one environment variable given to a run.
type Variable struct {
	Name   string      // as the process sees it, without a ro_/wo_ prefix
	Value  string      // plain text, also for secrets
	Scope  stack.Scope // "" means stack.ScopeAll
	Secret bool        // the value is masked in logs
}

// String leaves the value out, so that a Variable can be logged.
func (v Variable) String() string {
	if v.Secret {
		return fmt.Sprintf("%s (%s, secret)", v.Name, v.scope())
	}
	return fmt.Sprintf("%s (%s)", v.Name, v.scope())
}

// GoString is String, so that %#v does not print the value either.
func (v Variable) GoString() string { return v.String() }

// LogValue logs the variable without its value.
func (v Variable) LogValue() slog.Value { return slog.StringValue(v.String()) }

func (v Variable) scope() stack.Scope {
	if v.Scope == "" {
		return stack.ScopeAll
	}
	return v.Scope
}

var (
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	commitPattern  = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// Validate reports every problem of j at once, as domain validation errors.
func (j Job) Validate() error {
	var p domain.Problems
	p.Check(ids.Run.Validate("run_id", j.RunID))
	p.Check(ids.Stack.Validate("stack_id", j.StackID))
	if !j.Type.Valid() {
		p.Addf("type", "unknown run type %q", j.Type)
	}
	if j.Confirmed && j.Type != run.Tracked {
		p.Add("confirmed", "only TRACKED runs are confirmed")
	}
	if j.Destroy && j.Type != run.Tracked {
		p.Add("destroy", "only TRACKED runs destroy")
	}
	if j.Type == run.Task && strings.TrimSpace(j.TaskCommand) == "" {
		p.Add("task_command", "a TASK run needs a command")
	}
	if j.Type != run.Task && j.TaskCommand != "" {
		p.Add("task_command", "only TASK runs have a command")
	}
	switch j.Tool {
	case stack.Terraform, stack.OpenTofu:
	default:
		p.Addf("tool", "must be %q or %q, not %q", stack.Terraform, stack.OpenTofu, j.Tool)
	}
	if !commitPattern.MatchString(j.Commit) {
		p.Addf("commit", "%q is not a full commit id (40 or 64 lowercase hex digits)", j.Commit)
	}
	switch {
	case j.RepositoryURL == "":
		p.Add("repository_url", "must not be empty")
	case strings.HasPrefix(j.RepositoryURL, "-") || strings.ContainsAny(j.RepositoryURL, "\x00\n\r"):
		p.Add("repository_url", "is not a repository URL")
	}
	if _, err := cleanProjectRoot(j.ProjectRoot); err != nil {
		p.Add("project_root", err.Error())
	}
	checkVariables(&p, "env", j.Env)
	checkVariables(&p, "whitelist", j.Whitelist)
	checkFiles(&p, j.Files)
	for _, n := range j.MaskNames {
		if !envNamePattern.MatchString(n) {
			p.Addf("mask_names", "%q is not a variable name", n)
		}
	}
	return p.Err()
}

// checkVariables refuses names a process cannot receive, unknown scopes, and
// two variables of the same name and scope (which one would win?).
func checkVariables(p *domain.Problems, field string, vars []Variable) {
	seen := map[string]bool{}
	for _, v := range vars {
		switch {
		case !envNamePattern.MatchString(v.Name):
			p.Addf(field, "%q is not a variable name", v.Name)
			continue
		case strings.ContainsRune(v.Value, 0):
			p.Addf(field, "the value of %s contains a NUL byte", v.Name)
		}
		switch v.scope() {
		case stack.ScopeAll, stack.ScopeReadOnly, stack.ScopeWriteOnly:
		default:
			p.Addf(field, "%s has an unknown scope %q", v.Name, v.Scope)
		}
		key := v.Name + "/" + string(v.scope())
		if seen[key] {
			p.Addf(field, "%s is given twice with scope %s", v.Name, v.scope())
		}
		seen[key] = true
	}
}

// cleanProjectRoot returns the project root as a clean relative path ("" for
// the repository root), refusing one that is absolute or climbs out.
func cleanProjectRoot(root string) (string, error) {
	if root == "" {
		return "", nil
	}
	if strings.HasPrefix(root, "/") || strings.ContainsRune(root, 0) {
		return "", fmt.Errorf("%q must be relative to the repository root", root)
	}
	clean := path.Clean(root)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q must stay inside the repository", root)
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}
