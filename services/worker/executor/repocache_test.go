package executor_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// catJob is a task of repo at commit that prints marker.txt of the checkout
// and what git says HEAD is.
func catJob(repo *testRepo, commit string) executor.Job {
	j := job(repo, commit)
	j.Type, j.Autodeploy, j.Debug = run.Task, false, true
	j.TaskCommand = `echo "marker: $(cat marker.txt)"; echo "head: $(git rev-parse HEAD)"`
	return j
}

// runCat runs catJob and checks that the run saw exactly commit, with
// marker as marker.txt.
func runCat(t *testing.T, h *harness, j executor.Job, marker string) string {
	t.Helper()
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	logs := rec.allLogs()
	if res.Status != run.Finished {
		t.Fatalf("run of %s: %s %q\n%s", j.Commit, res.Status, res.Note, logs)
	}
	if !strings.Contains(logs, "marker: "+marker) || !strings.Contains(logs, "head: "+j.Commit) {
		t.Fatalf("the run did not see marker %q at %s:\n%s", marker, j.Commit, logs)
	}
	return rec.log(run.PhasePreparing)
}

// cacheEntries returns the bare repositories of the worker's cache.
func cacheEntries(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "*", "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

// TestRepositoryCache: the first run of a repository fetches its commit
// into the cache; a second run of the same commit fetches nothing; a commit
// pushed between runs is fetched and checked out; and a cache whose packs
// were damaged, or whose repository was cut short, heals by fetching again.
func TestRepositoryCache(t *testing.T) {
	repo, first := newRepo(t, map[string]string{"main.tf": noChangesConfig, "marker.txt": "one"})
	h := newHarness(t, nil)

	log := runCat(t, h, catJob(repo, first), "one")
	if !strings.Contains(log, "Fetched "+first+" into the worker's repository cache") || !strings.Contains(log, "+ git --git-dir=") {
		t.Fatalf("the first run did not fetch into the cache:\n%s", log)
	}
	if strings.Contains(log, "git clone") {
		t.Fatalf("the first run cloned:\n%s", log)
	}

	log = runCat(t, h, catJob(repo, first), "one")
	if !strings.Contains(log, "Using "+first+" from the worker's repository cache") || strings.Contains(log, "fetch") || strings.Contains(log, "clone") {
		t.Fatalf("the second run did not reuse the cache:\n%s", log)
	}

	second := repo.commit(map[string]string{"marker.txt": "two"})
	log = runCat(t, h, catJob(repo, second), "two")
	if !strings.Contains(log, "Fetched "+second) {
		t.Fatalf("the new commit was not fetched:\n%s", log)
	}
	// The older commit is still served from the cache.
	runCat(t, h, catJob(repo, first), "one")

	entries := cacheEntries(t, h.cfg.RepoCacheDir)
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want one", entries)
	}
	packs, _ := filepath.Glob(filepath.Join(entries[0], "objects", "pack", "*.pack"))
	if len(packs) == 0 {
		t.Fatal("the cache holds no pack")
	}
	for _, p := range packs {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not a pack"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log = runCat(t, h, catJob(repo, second), "two")
	if !strings.Contains(log, "could not be read") || !strings.Contains(log, "Fetched "+second) {
		t.Fatalf("the damaged cache was not fetched again:\n%s", log)
	}

	// A repository cut short (as by a crash while it was made) is made again.
	if err := os.Remove(filepath.Join(entries[0], "HEAD")); err != nil {
		t.Fatal(err)
	}
	log = runCat(t, h, catJob(repo, first), "one")
	if !strings.Contains(log, "Fetched "+first) {
		t.Fatalf("the broken cache was not made again:\n%s", log)
	}
}

// TestRepositoryCacheSharedByWorkers runs runs of two commits at once on
// two executors sharing one cache directory, as the workers of `gantry dev`
// or the launchers of a host do: each run sees its own commit.
func TestRepositoryCacheSharedByWorkers(t *testing.T) {
	repo, first := newRepo(t, map[string]string{"main.tf": noChangesConfig, "marker.txt": "one"})
	second := repo.commit(map[string]string{"marker.txt": "two"})
	cache := t.TempDir()
	shared := func(c *executor.Config) { c.RepoCacheDir = cache }
	workers := []*harness{newHarness(t, shared), newHarness(t, shared)}
	var wg sync.WaitGroup
	for i := range 4 {
		h := workers[i%2]
		commit, marker := first, "one"
		if i >= 2 {
			commit, marker = second, "two"
		}
		j := catJob(repo, commit)
		j.RunID += strings.Repeat("x", i+1)
		wg.Go(func() {
			rec := newRecorder()
			res := wait(t, h.start(t, context.Background(), j, rec))
			logs := rec.allLogs()
			if res.Status != run.Finished || !strings.Contains(logs, "marker: "+marker) || !strings.Contains(logs, "head: "+commit) {
				t.Errorf("run %d of %s: %s %q\n%s", i, commit, res.Status, res.Note, logs)
			}
		})
	}
	wg.Wait()
	if entries := cacheEntries(t, cache); len(entries) != 1 {
		t.Fatalf("cache entries %v, want one", entries)
	}
}

// TestRepositoryCacheOfAPrivateRepository: over HTTP with the job's
// credentials the run fetches into the cache, which keeps no trace of them;
// a run without those credentials does not get the cached objects.
func TestRepositoryCacheOfAPrivateRepository(t *testing.T) {
	const token = "ghp-cached-token-4711"
	repo, commit := newRepo(t, map[string]string{"main.tf": noChangesConfig, "marker.txt": "private"})
	url, refused := privateGitServer(t, repo, "x-access-token", token)
	h := newHarness(t, nil)
	j := catJob(repo, commit)
	j.RepositoryURL = url
	j.Git = &protocol.GitCredentials{Username: "x-access-token", Password: token}
	log := runCat(t, h, j, "private")
	if !strings.Contains(log, "Fetched "+commit) {
		t.Fatalf("not fetched into the cache:\n%s", log)
	}
	j.RunID += "b"
	if log := runCat(t, h, j, "private"); !strings.Contains(log, "Using "+commit) {
		t.Fatalf("the second run did not use the cache:\n%s", log)
	}

	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	err := filepath.WalkDir(h.cfg.RepoCacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), token) || strings.Contains(string(data), basic) || strings.Contains(strings.ToLower(string(data)), "extraheader") {
			t.Errorf("%s holds the credentials", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries := cacheEntries(t, h.cfg.RepoCacheDir)
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want one", entries)
	}
	out, err := exec.Command("git", "--git-dir="+entries[0], "config", "--list", "--local").CombinedOutput()
	if err != nil || strings.Contains(string(out), "url") || strings.Contains(string(out), "remote") {
		t.Errorf("the cache's configuration names the remote (%v):\n%s", err, out)
	}

	// Without the credentials: refused, although the cache holds the commit.
	before := refused.Load()
	j = catJob(repo, commit)
	j.RepositoryURL = url
	rec := newRecorder()
	res := h.run(t, j, rec)
	if res.Status != run.Failed || refused.Load() == before || strings.Contains(rec.allLogs(), "marker: private") {
		t.Fatalf("without credentials: %s %q (refused %d)\n%s", res.Status, res.Note, refused.Load()-before, rec.allLogs())
	}
}

// TestRepositoryCacheOverSSH: an ssh:// repository with the job's key is
// fetched into the cache and served from there next time; a server that
// speaks only Git's protocol v0 (it serves no commit by its id but a
// branch's head) is cloned whole, and the run still sees its commit. The
// key stays out of the cache.
func TestRepositoryCacheOverSSH(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": noChangesConfig, "marker.txt": "over ssh"})
	repo.commit(map[string]string{"marker.txt": "the branch moved on"})
	for _, v2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("protocol v2 %v", v2), func(t *testing.T) {
			url, key := sshGitServer(t, repo, v2)
			h := newHarness(t, nil)
			j := catJob(repo, commit)
			j.RepositoryURL = url
			j.Git = &protocol.GitCredentials{SSHKey: key}
			log := runCat(t, h, j, "over ssh")
			want := "Fetched " + commit
			if !v2 {
				want = "Could not fetch " + commit + " alone: cloning the whole repository"
			}
			if !strings.Contains(log, want) {
				t.Fatalf("the first run's log lacks %q:\n%s", want, log)
			}
			j.RunID += "b"
			log = runCat(t, h, j, "over ssh")
			if v2 && !strings.Contains(log, "Using "+commit) {
				t.Fatalf("the second run did not use the cache:\n%s", log)
			}
			// A server that refused is not asked again for a while.
			if !v2 && (!strings.Contains(log, "The repository did not serve a commit alone") || strings.Contains(log, "fetch")) {
				t.Fatalf("the second run tried the server again:\n%s", log)
			}
			keyLine := strings.Split(strings.TrimSpace(key), "\n")[1]
			_ = filepath.WalkDir(h.cfg.RepoCacheDir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if data, _ := os.ReadFile(p); strings.Contains(string(data), keyLine) {
						t.Errorf("%s holds the key", p)
					}
				}
				return nil
			})
		})
	}
}

// A cache directory that cannot be made does not fail the run: it clones.
func TestRepositoryCacheUnusableClones(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": noChangesConfig, "marker.txt": "cloned"})
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *executor.Config) { c.RepoCacheDir = filepath.Join(notADir, "cache") })
	log := runCat(t, h, catJob(repo, commit), "cloned")
	if !strings.Contains(log, "The worker's repository cache cannot be used") || !strings.Contains(log, "+ git clone") {
		t.Fatalf("the run did not clone:\n%s", log)
	}
}
