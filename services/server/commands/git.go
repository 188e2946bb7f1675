package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// GitResolver resolves branch heads with the real git client: `git
// ls-remote`, which works for file:// URLs, local paths, http(s) and ssh
// alike and needs no clone.
type GitResolver struct {
	// Timeout bounds one ls-remote (a slow or hanging remote). Default 30 s.
	Timeout time.Duration
	// Env is added to git's environment: the credentials of a private
	// repository (WithCredentials).
	Env []string
}

// ErrRepository is matched by every *RepositoryError.
var ErrRepository = errors.New("repository problem")

// RepositoryError says a stack's repository cannot serve a run: it cannot be
// reached, or the branch does not exist. Field is repository_url or branch.
// The request is fine; the stack's settings or the remote need fixing.
type RepositoryError struct {
	Field   string
	Problem string
}

// Error implements error.
func (e *RepositoryError) Error() string { return e.Field + ": " + e.Problem }

// Is makes errors.Is(err, ErrRepository) true.
func (e *RepositoryError) Is(target error) bool { return target == ErrRepository }

// allowedProtocols are the transports a repository URL may use; the ext and
// fd transports (which run commands) are refused.
const allowedProtocols = "file:http:https:ssh:git"

// Head returns the commit id at the head of branch in repo.
func (g GitResolver) Head(ctx context.Context, repo, branch string) (string, error) {
	if strings.HasPrefix(repo, "-") {
		return "", &RepositoryError{Field: "repository_url", Problem: "must not start with '-'"}
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ref := "refs/heads/" + branch
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--", repo, ref)
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",               // never wait for a password
		"GIT_SSH_COMMAND=ssh -oBatchMode=yes", // nor for a host key or passphrase
		"GIT_ALLOW_PROTOCOL="+allowedProtocols,
		"LC_ALL=C",
	)
	cmd.Env = append(cmd.Env, g.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "", &RepositoryError{Field: "repository_url", Problem: fmt.Sprintf("%s did not answer within %s", repo, timeout)}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", &RepositoryError{Field: "repository_url", Problem: fmt.Sprintf("cannot read %s: %s", repo, firstLine(stderr.String()))}
	}
	if err != nil {
		return "", fmt.Errorf("git ls-remote %s: %w", repo, err)
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && name == ref {
			return sha, nil
		}
	}
	return "", &RepositoryError{Field: "branch", Problem: fmt.Sprintf("branch %q does not exist in %s", branch, repo)}
}

// firstLine returns the first non-empty line of git's error output.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return strings.TrimPrefix(line, "fatal: ")
		}
	}
	return "git ls-remote failed"
}
