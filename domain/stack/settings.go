package stack

import (
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// Tool is the infrastructure-as-code binary a stack runs.
type Tool string

// Supported tools.
const (
	Terraform Tool = "terraform"
	OpenTofu  Tool = "tofu"
)

// DefaultBranch is the branch of a stack created without one.
const DefaultBranch = "main"

// Limits on settings, generous for real use and small enough to keep events small.
const (
	MaxNameLength        = 100
	MaxDescriptionLength = 2000
	MaxHookLength        = 4096
	MaxRunnerImageLength = 512
	MaxBranchLength      = 255
	MaxProjectRootLength = 1024
	MaxURLLength         = 2048
)

// Hooks are shell commands run around the phases of every run of the stack.
type Hooks struct {
	BeforeInit  []string `json:"before_init,omitempty"`
	AfterInit   []string `json:"after_init,omitempty"`
	BeforePlan  []string `json:"before_plan,omitempty"`
	AfterPlan   []string `json:"after_plan,omitempty"`
	BeforeApply []string `json:"before_apply,omitempty"`
	AfterApply  []string `json:"after_apply,omitempty"`
	AfterRun    []string `json:"after_run,omitempty"`
}

// lists names each hook list, so validation and copying handle all of them alike.
func (h *Hooks) lists() []struct {
	name string
	cmds *[]string
} {
	return []struct {
		name string
		cmds *[]string
	}{
		{"before_init", &h.BeforeInit}, {"after_init", &h.AfterInit},
		{"before_plan", &h.BeforePlan}, {"after_plan", &h.AfterPlan},
		{"before_apply", &h.BeforeApply}, {"after_apply", &h.AfterApply},
		{"after_run", &h.AfterRun},
	}
}

// Settings are what a user chooses for a stack. The managed-state flag is not
// among them: it is fixed at creation.
type Settings struct {
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	RepositoryURL string   `json:"repository_url"`
	Branch        string   `json:"branch"`
	ProjectRoot   string   `json:"project_root,omitempty"` // relative to the repository root; "" is the root
	Tool          Tool     `json:"tool"`
	WorkerPoolID  string   `json:"worker_pool_id"`
	RunnerImage   string   `json:"runner_image,omitempty"` // "" means the pool's default image
	Autodeploy    bool     `json:"autodeploy,omitempty"`
	Labels        []string `json:"labels,omitempty"`
	Hooks         Hooks    `json:"hooks"`
	// VCSIntegrationID ties the stack to a VCS integration ("vcs_…"): its
	// webhooks queue the stack's runs, its token or key clones the
	// repository, and webhook runs report commit statuses through it.
	VCSIntegrationID string `json:"vcs_integration_id,omitempty"`
}

// clone returns a copy that shares no slices with s.
func (s Settings) clone() Settings {
	s.Labels = slices.Clone(s.Labels)
	for _, l := range s.Hooks.lists() {
		*l.cmds = slices.Clone(*l.cmds)
	}
	return s
}

// normalize validates s, applies defaults (branch main, tool terraform, the
// public pool) and returns the canonical form stored in events, so that equal
// settings compare equal however the user spelled them.
func (s Settings) normalize() (Settings, error) {
	var p domain.Problems
	s = s.clone()
	checkName(&p, s.Name)
	p.CheckText("description", s.Description, MaxDescriptionLength, false)
	p.Check(checkRepositoryURL(s.RepositoryURL))
	if s.Branch == "" {
		s.Branch = DefaultBranch
	}
	p.Check(checkBranch(s.Branch))
	root, err := normalizeProjectRoot(s.ProjectRoot)
	p.Check(err)
	s.ProjectRoot = root
	switch s.Tool {
	case "":
		s.Tool = Terraform
	case Terraform, OpenTofu:
	default:
		p.Addf("tool", "must be %q or %q, not %q", Terraform, OpenTofu, s.Tool)
	}
	if s.WorkerPoolID == "" {
		s.WorkerPoolID = ids.PublicPool
	}
	p.Check(ids.WorkerPool.Validate("worker_pool_id", s.WorkerPoolID))
	switch {
	case len(s.RunnerImage) > MaxRunnerImageLength:
		p.Addf("runner_image", "must be at most %d characters", MaxRunnerImageLength)
	case strings.ContainsFunc(s.RunnerImage, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		p.Add("runner_image", "must not contain spaces")
	}
	if s.VCSIntegrationID != "" {
		p.Check(ids.VCS.Validate("vcs_integration_id", s.VCSIntegrationID))
	}
	s.Labels = p.NormalizeLabels("labels", s.Labels)
	for _, l := range s.Hooks.lists() {
		for _, c := range *l.cmds {
			p.CheckText("hooks."+l.name, c, MaxHookLength, true)
		}
		if len(*l.cmds) == 0 {
			*l.cmds = nil // [] and nil mean the same; store one of them
		}
	}
	return s, p.Err()
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func checkName(p *domain.Problems, name string) {
	switch {
	case name == "":
		p.Add("name", "must not be empty")
	case len(name) > MaxNameLength:
		p.Addf("name", "must be at most %d characters", MaxNameLength)
	case !namePattern.MatchString(name):
		p.Addf("name", "%q may only contain letters, digits, '-', '_' and '.'", name)
	case name == "." || name == "..":
		// A path segment of its own: URLs and files named after the stack would resolve it.
		p.Addf("name", "%q is not a name", name)
	}
}

// scpLike matches Git's scp-like syntax, user@host:path.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$`)

// checkRepositoryURL accepts what Git can clone and what Gantry supports:
// file:// URLs, absolute local paths, http(s)://, ssh:// and user@host:path.
// URLs with a password are refused because settings are stored in events,
// in plain text; credentials belong in secrets.
func checkRepositoryURL(raw string) error {
	const field = "repository_url"
	invalid := func(problem string) error { return &domain.ValidationError{Field: field, Problem: problem} }
	switch {
	case raw == "":
		return invalid("must not be empty")
	case len(raw) > MaxURLLength:
		return invalid("is too long")
	case strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return invalid("must not contain spaces or control characters")
	case strings.HasPrefix(raw, "/"):
		return nil
	case !strings.Contains(raw, "://"):
		if scpLike.MatchString(raw) {
			return nil
		}
		return invalid("use file://, an absolute path, http(s)://, ssh:// or user@host:path")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("is not a valid URL")
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return invalid("must not contain a password: put credentials in a secret")
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return invalid("a file URL takes an absolute path: file:///path/to/repo")
		}
		if u.Path == "" || u.Path == "/" {
			return invalid("a file URL needs a path")
		}
	case "http", "https", "ssh":
		if u.Host == "" {
			return invalid("needs a host")
		}
		if strings.Trim(u.Path, "/") == "" {
			return invalid("needs a repository path")
		}
	default:
		return invalid("scheme " + u.Scheme + " is not supported: use file, http, https or ssh")
	}
	return nil
}

// checkBranch applies the parts of git check-ref-format that a user can get
// wrong when typing a branch name.
func checkBranch(b string) error {
	invalid := func(problem string) error { return &domain.ValidationError{Field: "branch", Problem: problem} }
	switch {
	case len(b) > MaxBranchLength:
		return invalid("is too long")
	case b == "@" || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock"):
		return invalid(b + " is not a valid branch name")
	case strings.Contains(b, "..") || strings.Contains(b, "@{") || strings.Contains(b, "//") || strings.Contains(b, "/."):
		return invalid(b + " is not a valid branch name")
	case strings.HasPrefix(b, "."), strings.ContainsAny(b, " ~^:?*[\\"), strings.ContainsFunc(b, unicode.IsControl):
		return invalid(b + " is not a valid branch name")
	}
	return nil
}

// normalizeProjectRoot cleans a project root and refuses one that is
// absolute or climbs out of the repository: runs must only see their checkout.
func normalizeProjectRoot(root string) (string, error) {
	invalid := func(problem string) error { return &domain.ValidationError{Field: "project_root", Problem: problem} }
	switch {
	case root == "":
		return "", nil
	case len(root) > MaxProjectRootLength:
		return "", invalid("is too long")
	case strings.ContainsFunc(root, unicode.IsControl):
		return "", invalid("must not contain control characters")
	case strings.HasPrefix(root, "/"):
		return "", invalid("must be relative to the repository root")
	}
	clean := path.Clean(root)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", invalid("must stay inside the repository")
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}
