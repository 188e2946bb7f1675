package executor_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// providerConfig needs the test provider, which only the mirror has, and
// runs it in every plan (its data source).
const providerConfig = `
terraform {
  required_providers {
    test = { source = "` + testenv.TestProviderSource + `", version = "` + testenv.TestProviderVersion + `" }
  }
}

data "test_echo" "e" {
  input = "cached"
}

output "echo" {
  value = data.test_echo.e.output
}
`

// pluginCache is a provider cache shared by the runs of one host, and what
// the runs need to install the test provider from its mirror.
type pluginCache struct {
	dir    string
	mirror testenv.ProviderMirror
}

func newPluginCache(t *testing.T) pluginCache {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // the containers' user writes there
		t.Fatal(err)
	}
	return pluginCache{dir: dir, mirror: testenv.TestProvider(t)}
}

// configure mounts the cache and the mirror into the containers at the
// same paths (GANTRY_WORKER_EXTRA_MOUNTS). Without containers, the runs
// get a short work directory: a provider listens on a Unix socket in the
// run's TMPDIR, whose path must fit in 108 bytes, and the tests' own
// temporary directories are long.
func (c pluginCache) configure(t *testing.T) func(*executor.Config) {
	return func(cfg *executor.Config) {
		if cfg.Docker != nil {
			cfg.Docker.Mounts = append(cfg.Docker.Mounts,
				executor.Mount{Source: c.dir, Target: c.dir}, executor.Mount{Source: c.mirror.Dir, Target: c.mirror.Dir, ReadOnly: true})
			return
		}
		dir, err := os.MkdirTemp("", "gw")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		cfg.WorkDir = dir
	}
}

// job is a job of repo whose stack sets TF_PLUGIN_CACHE_DIR, as provider
// caching asks (docs/workers.md).
func (c pluginCache) job(repo *testRepo, commit string) executor.Job {
	j := job(repo, commit)
	j.Env = []executor.Variable{{Name: "TF_CLI_CONFIG_FILE", Value: c.mirror.CLIConfig}, {Name: "TF_PLUGIN_CACHE_DIR", Value: c.dir}}
	return j
}

// binary is the cached provider's file.
func (c pluginCache) binary(t *testing.T) os.FileInfo {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(c.dir, "registry.terraform.io", testenv.TestProviderSource, testenv.TestProviderVersion, "*", "terraform-provider-test_*"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("the cached provider: %v %v", matches, err)
	}
	fi, err := os.Stat(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestProviderCacheSharedByConcurrentRuns: four workers of one host
// initialize at once with a shared TF_PLUGIN_CACHE_DIR (mounted into the
// containers with the extra mounts): all four succeed, the provider is
// installed once, and a second round installs nothing: it links the cached
// package, which stays the very same file.
func TestProviderCacheSharedByConcurrentRuns(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		cache := newPluginCache(t)
		repo, commit := newRepo(t, map[string]string{"main.tf": providerConfig})
		workers := make([]*harness, 4)
		for i := range workers {
			workers[i] = newHarnessFor(t, kind, cache.configure(t))
		}
		round := func(name string) []string {
			t.Helper()
			logs := make([]string, len(workers))
			var wg sync.WaitGroup
			for i, h := range workers {
				wg.Go(func() {
					rec := newRecorder()
					res := h.run(t, cache.job(repo, commit), rec)
					rec.check(t)
					logs[i] = rec.allLogs()
					if res.Status != run.Finished {
						t.Errorf("%s, worker %d: %s (%s)\n%s", name, i, res.Status, res.Note, logs[i])
					}
				})
			}
			wg.Wait()
			for i, l := range logs {
				for _, bad := range []string{"text file busy", "Error:", "match any of the checksums"} {
					if strings.Contains(l, bad) {
						t.Errorf("%s, worker %d: %q in its log:\n%s", name, i, bad, l)
					}
				}
				if !strings.Contains(l, `echo = "cached"`) {
					t.Errorf("%s, worker %d: the provider's data source did not run:\n%s", name, i, l)
				}
			}
			return logs
		}
		count := func(logs []string, s string) (n int) {
			for _, l := range logs {
				n += strings.Count(l, s)
			}
			return n
		}

		first := round("first round")
		if n := count(first, "Installing gantry/test"); n != 1 {
			t.Errorf("first round: the provider was installed %d times, want once", n)
		}
		if n := count(first, "from the shared cache directory"); n != len(workers)-1 {
			t.Errorf("first round: %d runs used the cached provider, want %d", n, len(workers)-1)
		}
		before := cache.binary(t)
		second := round("second round")
		if n := count(second, "Installing gantry/test"); n != 0 {
			t.Errorf("second round: the provider was installed %d times, want none", n)
		}
		if n := count(second, "from the shared cache directory"); n != len(workers) {
			t.Errorf("second round: %d runs used the cached provider, want %d", n, len(workers))
		}
		after := cache.binary(t)
		if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) || before.Size() != after.Size() {
			t.Errorf("the second round rewrote the cached provider: %v %v, then %v %v", before.ModTime(), before.Size(), after.ModTime(), after.Size())
		}
	})
}

// TestInitWaitsForThePluginCacheLock: while another holder has the cache's
// lock (another launcher's init), a run's init waits, saying so, and goes
// on once it is released.
func TestInitWaitsForThePluginCacheLock(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		cache := newPluginCache(t)
		lock, err := os.OpenFile(filepath.Join(cache.dir, executor.PluginCacheLockFile), os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		h := newHarnessFor(t, kind, cache.configure(t))
		repo, commit := newRepo(t, map[string]string{"main.tf": providerConfig})
		rec := newRecorder()
		x := h.start(t, t.Context(), cache.job(repo, commit), rec)
		rec.waitForLine(t, "Waiting for the provider plugin cache "+cache.dir)
		if strings.Contains(rec.log(run.PhaseInitializing), "Initializing provider plugins") {
			t.Fatalf("init ran while the cache was locked:\n%s", rec.log(run.PhaseInitializing))
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); err != nil {
			t.Fatal(err)
		}
		if res := wait(t, x); res.Status != run.Finished {
			t.Fatalf("%s (%s)\n%s", res.Status, res.Note, rec.allLogs())
		}
		if log := rec.log(run.PhaseInitializing); !strings.Contains(log, "Installing gantry/test") {
			t.Errorf("init did not install the provider once the lock was free:\n%s", log)
		}
	})
}
