package executor

import (
	"context"
	"net/url"
	"strings"
)

// checkout clones the job's repository into the workspace and checks out
// exactly the job's commit, detached from any branch.
func (x *execution) checkout(ctx context.Context, ph *phase) *failure {
	shown := redactURL(x.job.RepositoryURL)
	ph.log.printf("Checking out %s at %s", shown, x.job.Commit)
	env, cleanup, err := x.gitCredentialEnv(x.gitEnv())
	if err != nil {
		return x.fail(ph, ExitNoProcess, "git credentials: %v", err)
	}
	defer cleanup()
	clone := command{
		name:    "git clone",
		prog:    "git",
		args:    []string{"clone", "--no-checkout", "--quiet", "--", cloneSource(x.job.RepositoryURL), sourceDir},
		display: shellJoin("git", "clone", "--no-checkout", "--quiet", "--", shown, sourceDir),
		dir:     x.ws.work, env: env,
	}
	code, err := x.runCommand(ctx, ph.log, x.host(), clone)
	if f := x.commandFailure(ph, clone, code, err); f != nil {
		return f
	}
	// rev^{commit} refuses anything but a commit; the id is a full one, so
	// HEAD ends up exactly at it.
	rev := x.job.Commit + "^{commit}"
	co := command{
		name:    "git checkout",
		prog:    "git",
		args:    []string{"-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", rev},
		display: shellJoin("git", "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", rev),
		dir:     x.ws.source, env: env,
	}
	code, err = x.runCommand(ctx, ph.log, x.host(), co)
	return x.commandFailure(ph, co, code, err)
}

// cloneSource is what git clone is given for a repository URL: a file://
// URL becomes its path, so that git clones locally (copying or linking the
// object files) instead of running its transport protocol in extra
// processes, which costs tens of milliseconds per run. The result is the
// same repository.
func cloneSource(repo string) string {
	if !strings.HasPrefix(repo, "file://") {
		return repo
	}
	u, err := url.Parse(repo)
	if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return repo
	}
	return u.Path
}

// redactURL removes credentials from a repository URL before it is logged.
func redactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// shellJoin quotes words as sh would need them, for the debug log.
func shellJoin(words ...string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%^{}", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
