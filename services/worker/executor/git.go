package executor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// checkout puts exactly the job's commit, detached from any branch, into
// the workspace: from the worker's repository cache when it has one
// (repocache.go), by cloning the repository otherwise.
func (x *execution) checkout(ctx context.Context, ph *phase) *failure {
	shown := redactURL(x.job.RepositoryURL)
	ph.log.printf("Checking out %s at %s", shown, x.job.Commit)
	env, cleanup, err := x.gitCredentialEnv(x.gitEnv())
	if err != nil {
		return x.fail(ph, ExitNoProcess, "git credentials: %v", err)
	}
	defer cleanup()
	if x.cfg.RepoCacheDir != "" {
		if done, f := x.checkoutCached(ctx, ph, env); done {
			return f
		}
	}
	return x.clone(ctx, ph, env)
}

// clone clones the job's repository into the workspace and checks out the
// job's commit.
func (x *execution) clone(ctx context.Context, ph *phase, env []string) *failure {
	clone := command{
		name:    "git clone",
		prog:    "git",
		args:    []string{"clone", "--no-checkout", "--quiet", "--", cloneSource(x.job.RepositoryURL), sourceDir},
		display: shellJoin("git", "clone", "--no-checkout", "--quiet", "--", redactURL(x.job.RepositoryURL), sourceDir),
		dir:     x.ws.work, env: env,
	}
	code, err := x.runCommand(ctx, ph.log, x.host(), clone)
	if f := x.commandFailure(ph, clone, code, err); f != nil {
		return f
	}
	co := x.checkoutCommand(env)
	code, err = x.runCommand(ctx, ph.log, x.host(), co)
	return x.commandFailure(ph, co, code, err)
}

// checkoutCommand checks out the job's commit in the workspace's
// repository. rev^{commit} refuses anything but a commit; the id is a full
// one, so HEAD ends up exactly at it.
func (x *execution) checkoutCommand(env []string) command {
	rev := x.job.Commit + "^{commit}"
	return command{
		name:    "git checkout",
		prog:    "git",
		args:    []string{"-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", rev},
		display: shellJoin("git", "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", rev),
		dir:     x.ws.source, env: env,
	}
}

// checkoutCached checks the job's commit out from the worker's repository
// cache, fetching it into the cache first when the cache lacks it. done is
// false when the cache cannot serve this run (it cannot be written, or the
// repository will not serve a commit alone): the caller clones instead,
// and the log says why. A cache whose objects cannot be read is fetched
// again once.
func (x *execution) checkoutCached(ctx context.Context, ph *phase, env []string) (done bool, f *failure) {
	root := x.cfg.RepoCacheDir
	salt, err := repoCacheSalt(root)
	if err != nil {
		ph.log.printf("The worker's repository cache cannot be used (%v): cloning", err)
		return false, nil
	}
	key := cacheKey(salt, x.job.RepositoryURL, x.job.Git)
	refused := filepath.Join(root, key+".refused")
	if info, err := os.Stat(refused); err == nil && time.Since(info.ModTime()) < repoCacheRefusedFor {
		ph.log.printf("The repository did not serve a commit alone %s ago: cloning it", time.Since(info.ModTime()).Round(time.Second))
		return false, nil
	}
	e, f, err := x.lockRepoEntry(ctx, ph, root, key)
	if f != nil {
		return true, f
	}
	if err != nil {
		ph.log.printf("The worker's repository cache cannot be used (%v): cloning", err)
		return false, nil
	}
	defer e.unlock()
	commit := x.job.Commit
	for attempt := 1; ; attempt++ {
		fresh := false
		if !e.valid() {
			if f := x.initRepoEntry(ctx, ph, e, env); f != nil {
				if f.interrupted {
					return true, f
				}
				ph.log.printf("The worker's repository cache cannot be used: cloning")
				return false, nil
			}
			fresh = true
			evictRepoEntries(root, key)
		}
		if e.has(commit) {
			ph.log.printf("Using %s from the worker's repository cache", commit)
		} else {
			start := time.Now()
			fetch := x.fetchCommand(e, env)
			code, err := x.runCommand(ctx, ph.log, x.host(), fetch)
			var i *interruption
			switch {
			case errors.As(err, &i):
				return true, interrupted(i, code)
			case (err != nil || code != 0 || !e.has(commit)) && (fresh || attempt > 1):
				// A repository that does not serve a commit by its id
				// (an older server), or no such commit: a clone says which.
				// Remembered for a while, so that the runs of such a
				// repository do not pay for the attempt every time.
				ph.log.printf("Could not fetch %s alone: cloning the whole repository", commit)
				_ = e.remove()
				_ = os.WriteFile(refused, nil, 0o600)
				return false, nil
			case err != nil || code != 0 || !e.has(commit):
				ph.log.printf("Could not fetch %s into the worker's repository cache: fetching into a new one", commit)
				_ = e.remove()
				continue
			}
			ph.log.printf("Fetched %s into the worker's repository cache in %d ms", commit, time.Since(start).Milliseconds())
		}
		err := e.copyInto(x.ws.source, commit, redactURL(x.job.RepositoryURL))
		if err == nil {
			co := x.checkoutCommand(env)
			var code int
			code, err = x.runCommand(ctx, ph.log, x.host(), co)
			var i *interruption
			if errors.As(err, &i) {
				return true, interrupted(i, code)
			}
			if err == nil && code != 0 {
				err = fmt.Errorf("git checkout exited with code %d", code)
			}
		}
		if err == nil {
			x.trimRepoEntry(e)
			return true, nil
		}
		if rmErr := removeAll(x.ws.source); rmErr != nil {
			return true, x.fail(ph, ExitNoProcess, "%v", rmErr)
		}
		if attempt > 1 {
			return true, x.fail(ph, ExitNoProcess, "check out %s from the worker's repository cache: %v", commit, err)
		}
		ph.log.printf("The worker's repository cache could not be read (%v): fetching into a new one", err)
		_ = e.remove()
	}
}

// initRepoEntry makes the entry a new, empty bare repository: built aside
// and renamed into place, so that a crash leaves none half made.
func (x *execution) initRepoEntry(ctx context.Context, ph *phase, e *repoEntry, env []string) *failure {
	if err := e.remove(); err != nil {
		return x.fail(ph, ExitNoProcess, "clear the worker's repository cache: %v", err)
	}
	tmp := e.dir + ".new"
	c := command{
		name:    "git init",
		prog:    "git",
		args:    []string{"init", "--bare", "--quiet", tmp},
		display: shellJoin("git", "init", "--bare", "--quiet", tmp),
		dir:     x.ws.work, env: env,
	}
	code, err := x.runCommand(ctx, ph.log, x.host(), c)
	if f := x.commandFailure(ph, c, code, err); f != nil {
		return f
	}
	if err := os.Rename(tmp, e.dir); err != nil {
		return x.fail(ph, ExitNoProcess, "set up the worker's repository cache: %v", err)
	}
	return nil
}

// fetchCommand fetches the job's commit alone, without its history, into
// the entry, under a ref of its own. Packs are kept as they come (no loose
// objects: a checkout copies packs only), nothing is collected in the
// background, and FETCH_HEAD, which would hold the URL, is not written.
func (x *execution) fetchCommand(e *repoEntry, env []string) command {
	args := []string{"--git-dir=" + e.dir,
		"-c", "fetch.unpackLimit=1", "-c", "transfer.unpackLimit=1", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
		"fetch", "--quiet", "--depth=1", "--no-tags", "--no-write-fetch-head", "--"}
	refspec := x.job.Commit + ":" + repoCacheRefs + x.job.Commit
	return command{
		name:    "git fetch",
		prog:    "git",
		args:    append(args, cloneSource(x.job.RepositoryURL), refspec),
		display: shellJoin(append(append([]string{"git"}, args...), redactURL(x.job.RepositoryURL), refspec)...),
		dir:     x.ws.work, env: env,
	}
}

// trimRepoEntry drops an entry that holds more packs than
// repoCacheMaxPacks: the next run fetches its commit into a new one.
func (x *execution) trimRepoEntry(e *repoEntry) {
	packs, err := e.packs()
	if err != nil || len(packs) <= 2*repoCacheMaxPacks {
		return
	}
	if err := e.remove(); err != nil {
		x.log.Warn("could not trim the repository cache", "dir", e.dir, "error", err)
	}
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
	_, hasPassword := u.User.Password()
	if u.Scheme == "ssh" && !hasPassword {
		return raw // ssh://git@host/repo: the user is an account name, and says how to reach the repository
	}
	// Over HTTP a user alone may be a token (https://TOKEN@host/repo).
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
