package commands_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/server/commands"
)

// repo makes a Git repository with commits on main and on feature and
// returns its directory and the two heads.
func repo(t *testing.T) (dir, mainHead, featureHead string) {
	t.Helper()
	dir = t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", name)
	}
	write("main.tf", "terraform {}\n")
	git("commit", "-q", "-m", "first")
	mainHead = git("rev-parse", "HEAD")
	git("checkout", "-q", "-b", "feature")
	write("extra.tf", "# feature\n")
	git("commit", "-q", "-m", "feature")
	featureHead = git("rev-parse", "HEAD")
	git("checkout", "-q", "main")
	return dir, mainHead, featureHead
}

func TestGitResolverHeads(t *testing.T) {
	dir, mainHead, featureHead := repo(t)
	g := commands.GitResolver{Timeout: 20 * time.Second}
	ctx := context.Background()
	for _, tt := range []struct{ repo, branch, want string }{
		{"file://" + dir, "main", mainHead},
		{dir, "feature", featureHead}, // a local path works as well
	} {
		got, err := g.Head(ctx, tt.repo, tt.branch)
		if err != nil || got != tt.want {
			t.Errorf("Head(%s, %s) = %q, %v; want %s", tt.repo, tt.branch, got, err, tt.want)
		}
	}

	for _, tt := range []struct{ name, repo, branch, field string }{
		{"unknown branch", "file://" + dir, "nope", "branch"},
		{"a prefix of a branch is not the branch", "file://" + dir, "feat", "branch"},
		{"no repository", "file://" + filepath.Join(dir, "missing"), "main", "repository_url"},
		{"option injection", "--upload-pack=touch /tmp/pwned", "main", "repository_url"},
		{"ext transport", "ext::sh -c touch% /tmp/pwned", "main", "repository_url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := g.Head(ctx, tt.repo, tt.branch)
			var re *commands.RepositoryError
			if !errors.As(err, &re) || re.Field != tt.field || !errors.Is(err, commands.ErrRepository) {
				t.Fatalf("error %v, want a *RepositoryError on %s", err, tt.field)
			}
		})
	}
}
