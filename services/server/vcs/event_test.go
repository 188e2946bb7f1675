package vcs_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/services/server/vcs"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func githubPush(ref, after string, deleted bool) string {
	d := "false"
	if deleted {
		d = "true"
	}
	return `{"ref":"` + ref + `","after":"` + after + `","deleted":` + d + `,
	"repository":{"full_name":"org/app","clone_url":"https://github.com/org/app.git","ssh_url":"git@github.com:org/app.git","html_url":"https://github.com/org/app"},
	"commits":[{"added":["infra/main.tf"],"modified":["README.md"],"removed":[]},{"added":[],"modified":["infra/main.tf"],"removed":["old.tf"]}]}`
}

func TestParse(t *testing.T) {
	ghRepos := []string{"https://github.com/org/app.git", "git@github.com:org/app.git", "https://github.com/org/app"}
	glRepos := []string{"https://gitlab.com/group/app.git", "git@gitlab.com:group/app.git", "https://gitlab.com/group/app"}
	glProject := `"project":{"id":7,"path_with_namespace":"group/app","git_http_url":"https://gitlab.com/group/app.git","git_ssh_url":"git@gitlab.com:group/app.git","web_url":"https://gitlab.com/group/app"}`
	cases := []struct {
		name     string
		provider domainvcs.Provider
		event    string
		payload  string
		want     vcs.Event
		ignored  string // part of the reason
	}{
		{"github push", domainvcs.GitHub, "push", githubPush("refs/heads/main", sha, false),
			vcs.Event{Kind: vcs.Push, Branch: "main", Commit: sha, Repositories: ghRepos, Files: []string{"infra/main.tf", "README.md", "old.tf"}, FilesListed: true, Repo: "org/app"}, ""},
		{"github push in upper case", domainvcs.GitHub, "push", githubPush("refs/heads/feature/x", strings.ToUpper(sha), false),
			vcs.Event{Kind: vcs.Push, Branch: "feature/x", Commit: sha, Repositories: ghRepos, Files: []string{"infra/main.tf", "README.md", "old.tf"}, FilesListed: true, Repo: "org/app"}, ""},
		{"github tag", domainvcs.GitHub, "push", githubPush("refs/tags/v1", sha, false), vcs.Event{}, "tag v1"},
		{"github deleted branch", domainvcs.GitHub, "push", githubPush("refs/heads/old", strings.Repeat("0", 40), true), vcs.Event{}, "was deleted"},
		{"github bad commit", domainvcs.GitHub, "push", githubPush("refs/heads/main", "abc", false), vcs.Event{}, "not a full commit id"},
		{"github malformed", domainvcs.GitHub, "push", `{"ref": 7}`, vcs.Event{}, "malformed push payload"},
		{"github pull request opened", domainvcs.GitHub, "pull_request",
			`{"action":"opened","number":12,"pull_request":{"head":{"sha":"` + sha + `","ref":"f"},"base":{"ref":"main"}},"repository":{"full_name":"org/app","clone_url":"https://github.com/org/app.git"}}`,
			vcs.Event{Kind: vcs.PullRequest, Branch: "main", Commit: sha, Repositories: []string{"https://github.com/org/app.git"}, Repo: "org/app", Number: 12}, ""},
		{"github pull request closed", domainvcs.GitHub, "pull_request", `{"action":"closed","pull_request":{}}`, vcs.Event{}, `action "closed"`},
		{"github issues", domainvcs.GitHub, "issues", `{}`, vcs.Event{}, `"issues" does not queue runs`},
		{"gitlab push", domainvcs.GitLab, "Push Hook", `{"object_kind":"push","ref":"refs/heads/main","after":"` + sha + `",` + glProject + `,"commits":[{"added":["a.tf"]}]}`,
			vcs.Event{Kind: vcs.Push, Branch: "main", Commit: sha, Repositories: glRepos, Files: []string{"a.tf"}, FilesListed: true, Repo: "group/app"}, ""},
		{"gitlab deleted branch", domainvcs.GitLab, "Push Hook", `{"ref":"refs/heads/x","after":"` + strings.Repeat("0", 40) + `",` + glProject + `}`, vcs.Event{}, "was deleted"},
		{"gitlab merge request opened", domainvcs.GitLab, "Merge Request Hook",
			`{"object_kind":"merge_request",` + glProject + `,"object_attributes":{"iid":3,"action":"open","target_branch":"main","last_commit":{"id":"` + sha + `"}}}`,
			vcs.Event{Kind: vcs.PullRequest, Branch: "main", Commit: sha, Repositories: glRepos, Repo: "group/app", Number: 3}, ""},
		{"gitlab merge request edited", domainvcs.GitLab, "Merge Request Hook",
			`{"object_attributes":{"iid":3,"action":"update","target_branch":"main","last_commit":{"id":"` + sha + `"}}}`, vcs.Event{}, "without new commits"},
		{"gitlab merge request merged", domainvcs.GitLab, "Merge Request Hook", `{"object_attributes":{"action":"merge"}}`, vcs.Event{}, `action "merge"`},
		{"gitlab tag push hook", domainvcs.GitLab, "Tag Push Hook", `{}`, vcs.Event{}, "does not queue runs"},
		{"unknown provider", "bitbucket", "push", `{}`, vcs.Event{}, "unknown provider"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vcs.Parse(tc.provider, tc.event, []byte(tc.payload))
			if tc.ignored != "" {
				if !errors.Is(err, vcs.ErrIgnored) || !strings.Contains(err.Error(), tc.ignored) {
					t.Fatalf("err = %v, want ignored with %q", err, tc.ignored)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("event\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	body := []byte(`{"zen":"hi"}`)
	sig := vcs.SignGitHub([]byte("s3cret"), body)
	if !vcs.VerifyGitHub([]byte("s3cret"), body, sig) {
		t.Error("a correct signature does not verify")
	}
	for _, bad := range []string{"", "sha1=" + sig[7:], sig[:len(sig)-2] + "00", "sha256=zz", vcs.SignGitHub([]byte("other"), body)} {
		if vcs.VerifyGitHub([]byte("s3cret"), body, bad) {
			t.Errorf("signature %q verifies", bad)
		}
	}
	if vcs.VerifyGitHub(nil, body, vcs.SignGitHub(nil, body)) {
		t.Error("an empty secret verifies")
	}
	if !vcs.VerifyGitLab([]byte("tok"), "tok") || vcs.VerifyGitLab([]byte("tok"), "tok2") || vcs.VerifyGitLab(nil, "") {
		t.Error("gitlab token comparison is wrong")
	}
}

func TestTouches(t *testing.T) {
	for _, tc := range []struct {
		root  string
		paths []string
		want  bool
	}{
		{"", nil, true},
		{"infra", []string{"README.md", "infra/main.tf"}, true},
		{"infra/", []string{"infra"}, true},
		{"infra", []string{"infrastructure/main.tf"}, false},
		{"infra", nil, false},
	} {
		if got := vcs.Touches(tc.root, tc.paths); got != tc.want {
			t.Errorf("Touches(%q, %v) = %v", tc.root, tc.paths, got)
		}
	}
}

// FuzzParse feeds the parsers arbitrary payloads: they must never panic,
// and an accepted event must carry a full commit and a branch.
func FuzzParse(f *testing.F) {
	f.Add("github", "push", githubPush("refs/heads/main", sha, false))
	f.Add("github", "pull_request", `{"action":"opened","pull_request":{"head":{"sha":"`+sha+`"},"base":{"ref":"main"}}}`)
	f.Add("gitlab", "Push Hook", `{"ref":"refs/heads/main","after":"`+sha+`"}`)
	f.Add("gitlab", "Merge Request Hook", `{"object_attributes":{"action":"open","target_branch":"m","last_commit":{"id":"`+sha+`"}}}`)
	f.Add("github", "push", `{"ref":"refs/tags/v1"}`)
	f.Add("gitlab", "Push Hook", `[`)
	f.Fuzz(func(t *testing.T, provider, event, payload string) {
		e, err := vcs.Parse(domainvcs.Provider(provider), event, []byte(payload))
		if err != nil {
			if !errors.Is(err, vcs.ErrIgnored) {
				t.Fatalf("error not an ignore reason: %v", err)
			}
			return
		}
		if e.Branch == "" || (len(e.Commit) != 40 && len(e.Commit) != 64) || (e.Kind != vcs.Push && e.Kind != vcs.PullRequest) {
			t.Fatalf("accepted an incomplete event %+v", e)
		}
	})
}
