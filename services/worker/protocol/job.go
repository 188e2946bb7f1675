package protocol

import (
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
)

// Job is the reply to run.job: what a worker needs to execute the run it was
// assigned, the stack's settings and variables as they are when the worker
// asks. Secret values are sealed to the worker pool's public key (package
// seal): only the pool's workers can read them, and the server never sends
// them in the clear.
type Job struct {
	RunID   string   `json:"run_id"`
	StackID string   `json:"stack_id"`
	Type    run.Type `json:"type"`
	// Confirmed: the run's plan was confirmed; the worker applies the
	// workspace the planning worker saved.
	Confirmed     bool   `json:"confirmed,omitempty"`
	Autodeploy    bool   `json:"autodeploy,omitempty"`
	RepositoryURL string `json:"repository_url"` // file://, a local path, http(s)://, ssh:// or user@host:path
	Commit        string `json:"commit"`         // the full commit id (40 or 64 hex digits)
	// Branch is the stack's branch and TriggeredBy who triggered the run:
	// metadata for the worker's run initialization policy.
	Branch      string     `json:"branch,omitempty"`
	TriggeredBy string     `json:"triggered_by,omitempty"`
	ProjectRoot string     `json:"project_root,omitempty"`
	Tool        stack.Tool `json:"tool"`
	// RunnerImage is the stack's runner image; "" means the worker's
	// default. Only the Docker executor uses it.
	RunnerImage string      `json:"runner_image,omitempty"`
	Hooks       stack.Hooks `json:"hooks"`
	TaskCommand string      `json:"task_command,omitempty"` // TASK runs only
	// ManagedState: Gantry keeps the stack's state; the worker writes the
	// backend override and takes credentials from each phase's start.
	ManagedState bool `json:"managed_state,omitempty"`
	// Env lists the stack's variables; a secret one has Sealed instead of
	// Value.
	Env []Variable `json:"env,omitempty"`
	// Drift: a drift-detection run; a plan with changes reports the
	// addresses of the changed resources.
	Drift bool `json:"drift,omitempty"`
	// GitCredentials, for a stack tied to a VCS integration with a token or
	// an SSH key, are a JSON GitCredentials sealed to the pool's key: the
	// worker clones the private repository with them.
	GitCredentials []byte `json:"git_credentials,omitempty"`
	// Destroy: a TRACKED run that plans with -destroy; its apply phase is
	// DESTROYING instead of APPLYING.
	Destroy bool `json:"destroy,omitempty"`
	// Files are the stack's mounted files, written relative to the project
	// root before init; their content is sealed like a secret's value.
	Files []File `json:"files,omitempty"`
	// OutputsKey is the server's public key (PEM) that a worker uploading
	// sensitive outputs seals their values to; only the server can open
	// them. "" when the server has none.
	OutputsKey string `json:"outputs_key,omitempty"`
}

// GitCredentials clone a private repository: over HTTPS with Username and
// Password (a token), over SSH with SSHKey (PEM).
type GitCredentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	SSHKey   string `json:"ssh_key,omitempty"`
}

// File is one of the stack's mounted files as a worker gets it.
type File struct {
	Path   string `json:"path"`   // relative to the project root, clean
	Sealed []byte `json:"sealed"` // the content sealed to the pool's key
}

// Variable is one of the stack's environment variables as a worker gets
// it: plain variables with their value, secret ones sealed.
type Variable struct {
	Name   string      `json:"name"`
	Scope  stack.Scope `json:"scope"`
	Value  string      `json:"value,omitempty"`  // plain variables
	Sealed []byte      `json:"sealed,omitempty"` // secret variables: the value sealed to the pool's key
}

// Secret reports whether the variable's value is sealed.
func (v Variable) Secret() bool { return v.Sealed != nil }

// StateCredentials are a phase's managed-state credentials, sealed to the
// pool's key in Reply.StateCredentials. A worker gives them to the phase as
// TF_HTTP_USERNAME and TF_HTTP_PASSWORD.
type StateCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}
