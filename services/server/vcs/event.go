package vcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	domainvcs "github.com/gantryhq/gantry/domain/vcs"
)

// Kinds of events that queue runs.
const (
	Push        = "push"         // a branch moved: TRACKED runs
	PullRequest = "pull_request" // a pull or merge request opened or updated: PROPOSED runs
)

// Event is what a delivery asks for, whatever the provider said it with.
type Event struct {
	Kind string // Push or PullRequest
	// Branch is the pushed branch, or the branch a pull request targets.
	Branch string
	// Commit is the pushed head, or the head of the pull request.
	Commit string
	// Repositories are the repository's clone, SSH and web URLs, as the
	// payload names them; stacks match on any of them (RepositoryKey).
	Repositories []string
	// Files are the paths the pushed commits added, modified or removed;
	// FilesListed is false when the payload does not list them (a pull
	// request), and then every stack of the branch is concerned.
	Files       []string
	FilesListed bool
	// Repo is the repository as the provider's API names it: "owner/name"
	// on GitHub, the project's path with its namespace on GitLab.
	Repo string
	// Number is the pull or merge request's number (iid on GitLab).
	Number int64
}

// ErrIgnored is matched by the error of every payload that asks for no
// run; its message says why, for the delivery's "ignored" record.
var ErrIgnored = errors.New("ignored")

func ignored(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrIgnored, fmt.Sprintf(format, args...))
}

// Parse reads the payload of a delivery of provider whose event header
// (X-GitHub-Event, X-Gitlab-Event) said event. Anything that asks for no
// run (a tag, a deleted branch, a closed pull request, an event type Gantry
// does not act on, a payload that is not what the event type promises) is
// an error matching ErrIgnored that says why. It never panics.
func Parse(provider domainvcs.Provider, event string, payload []byte) (Event, error) {
	switch provider {
	case domainvcs.GitHub:
		switch event {
		case "push":
			return parseGitHubPush(payload)
		case "pull_request":
			return parseGitHubPullRequest(payload)
		}
	case domainvcs.GitLab:
		switch event {
		case "Push Hook":
			return parseGitLabPush(payload)
		case "Merge Request Hook":
			return parseGitLabMergeRequest(payload)
		}
	default:
		return Event{}, ignored("unknown provider %q", provider)
	}
	return Event{}, ignored("%s event %q does not queue runs", provider, event)
}

// Handled reports whether deliveries of event are recorded for the drain:
// the others are answered at once and not recorded.
func Handled(provider domainvcs.Provider, event string) bool {
	switch provider {
	case domainvcs.GitHub:
		return event == "push" || event == "pull_request"
	case domainvcs.GitLab:
		return event == "Push Hook" || event == "Merge Request Hook"
	}
	return false
}

type githubRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
	GitURL   string `json:"git_url"`
}

type fileChanges struct {
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
}

func parseGitHubPush(payload []byte) (Event, error) {
	var p struct {
		Ref        string        `json:"ref"`
		After      string        `json:"after"`
		Deleted    bool          `json:"deleted"`
		Repository githubRepo    `json:"repository"`
		Commits    []fileChanges `json:"commits"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return Event{}, ignored("malformed push payload: %v", shortJSONError(err))
	}
	branch, err := pushedBranch(p.Ref, p.After, p.Deleted)
	if err != nil {
		return Event{}, err
	}
	return Event{
		Kind: Push, Branch: branch, Commit: strings.ToLower(p.After),
		Repositories: nonEmpty(p.Repository.CloneURL, p.Repository.SSHURL, p.Repository.HTMLURL, p.Repository.GitURL),
		Files:        files(p.Commits), FilesListed: true, Repo: p.Repository.FullName,
	}, nil
}

func parseGitHubPullRequest(payload []byte) (Event, error) {
	var p struct {
		Action      string `json:"action"`
		Number      int64  `json:"number"`
		PullRequest struct {
			Head struct {
				SHA string `json:"sha"`
			} `json:"head"`
			Base struct {
				Ref string `json:"ref"`
			} `json:"base"`
		} `json:"pull_request"`
		Repository githubRepo `json:"repository"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return Event{}, ignored("malformed pull_request payload: %v", shortJSONError(err))
	}
	switch p.Action {
	case "opened", "synchronize", "reopened":
	default:
		return Event{}, ignored("pull request action %q does not queue runs (opened, synchronize and reopened do)", p.Action)
	}
	if !validCommit(p.PullRequest.Head.SHA) {
		return Event{}, ignored("the pull request's head %q is not a full commit id", p.PullRequest.Head.SHA)
	}
	if p.PullRequest.Base.Ref == "" {
		return Event{}, ignored("the pull request names no base branch")
	}
	return Event{
		Kind: PullRequest, Branch: p.PullRequest.Base.Ref, Commit: strings.ToLower(p.PullRequest.Head.SHA),
		Repositories: nonEmpty(p.Repository.CloneURL, p.Repository.SSHURL, p.Repository.HTMLURL, p.Repository.GitURL),
		Repo:         p.Repository.FullName, Number: p.Number,
	}, nil
}

type gitlabProject struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	GitSSHURL         string `json:"git_ssh_url"`
	WebURL            string `json:"web_url"`
}

func (g gitlabProject) urls() []string { return nonEmpty(g.GitHTTPURL, g.GitSSHURL, g.WebURL) }

func parseGitLabPush(payload []byte) (Event, error) {
	var p struct {
		ObjectKind string        `json:"object_kind"`
		Ref        string        `json:"ref"`
		After      string        `json:"after"`
		Project    gitlabProject `json:"project"`
		Commits    []fileChanges `json:"commits"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return Event{}, ignored("malformed push payload: %v", shortJSONError(err))
	}
	if p.ObjectKind != "" && p.ObjectKind != "push" {
		return Event{}, ignored("a %q object in a push hook", p.ObjectKind)
	}
	branch, err := pushedBranch(p.Ref, p.After, false)
	if err != nil {
		return Event{}, err
	}
	return Event{
		Kind: Push, Branch: branch, Commit: strings.ToLower(p.After), Repositories: p.Project.urls(),
		Files: files(p.Commits), FilesListed: true, Repo: p.Project.PathWithNamespace,
	}, nil
}

func parseGitLabMergeRequest(payload []byte) (Event, error) {
	var p struct {
		ObjectKind       string        `json:"object_kind"`
		Project          gitlabProject `json:"project"`
		ObjectAttributes struct {
			IID          int64  `json:"iid"`
			Action       string `json:"action"`
			TargetBranch string `json:"target_branch"`
			OldRev       string `json:"oldrev"`
			LastCommit   struct {
				ID string `json:"id"`
			} `json:"last_commit"`
		} `json:"object_attributes"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return Event{}, ignored("malformed merge request payload: %v", shortJSONError(err))
	}
	a := p.ObjectAttributes
	switch {
	case a.Action == "open" || a.Action == "reopen":
	case a.Action == "update" && a.OldRev != "":
	case a.Action == "update":
		return Event{}, ignored("a merge request update without new commits does not queue runs")
	default:
		return Event{}, ignored("merge request action %q does not queue runs (open, reopen and update with new commits do)", a.Action)
	}
	if !validCommit(a.LastCommit.ID) {
		return Event{}, ignored("the merge request's last commit %q is not a full commit id", a.LastCommit.ID)
	}
	if a.TargetBranch == "" {
		return Event{}, ignored("the merge request names no target branch")
	}
	return Event{
		Kind: PullRequest, Branch: a.TargetBranch, Commit: strings.ToLower(a.LastCommit.ID), Repositories: p.Project.urls(),
		Repo: p.Project.PathWithNamespace, Number: a.IID,
	}, nil
}

// pushedBranch returns the branch of a push, or why the push is ignored.
func pushedBranch(ref, after string, deleted bool) (string, error) {
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		return "", ignored("tag %s: tags do not queue runs", strings.TrimPrefix(ref, "refs/tags/"))
	case !strings.HasPrefix(ref, "refs/heads/") || ref == "refs/heads/":
		return "", ignored("ref %q is not a branch", ref)
	case deleted || strings.Trim(after, "0") == "" && after != "":
		return "", ignored("branch %s was deleted", strings.TrimPrefix(ref, "refs/heads/"))
	case !validCommit(after):
		return "", ignored("the pushed head %q is not a full commit id", after)
	}
	return strings.TrimPrefix(ref, "refs/heads/"), nil
}

// validCommit reports whether s is a full SHA-1 or SHA-256 commit id.
func validCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func files(commits []fileChanges) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range commits {
		for _, list := range [][]string{c.Added, c.Modified, c.Removed} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
		}
	}
	return out
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// shortJSONError keeps a decoding error short: it may quote the payload.
func shortJSONError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return msg
}

// Touches reports whether a change of paths concerns a stack whose code is
// in root ("" is the whole repository).
func Touches(root string, paths []string) bool {
	root = strings.Trim(root, "/")
	if root == "" || root == "." {
		return true
	}
	for _, p := range paths {
		if p == root || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}
