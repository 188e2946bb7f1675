package executor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Provider plugin caching. A stack that sets TF_PLUGIN_CACHE_DIR to a
// directory other runs share (an operator's mount with the Docker
// executor, any host directory with the process executor) shares provider
// downloads between runs. Terraform's cache is not safe for concurrent
// `init`s (hashicorp/terraform#31964): two inits installing the same
// provider write the same file at once, and an init that links a package
// another is still writing gets a truncated binary ("text file busy", a
// checksum that matches nothing). And without a committed
// .terraform.lock.hcl, terraform never trusts a cached package: every
// init installs it again, over the file other runs' plans are executing.
// So the executor:
//
//   - holds an exclusive lock (flock) on PluginCacheLockFile in the cache
//     directory, on the host, while `<tool> init` runs: one init at a time
//     per cache, across the launchers of a host (and of hosts sharing the
//     directory over a filesystem with working locks, such as NFSv4);
//   - sets TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE=true unless the
//     stack (or a whitelisted variable) sets it: a package already in the
//     cache is linked, not installed again. A committed lock file is still
//     enforced: a cached package that does not match its checksums fails
//     the init.
const (
	pluginCacheEnv         = "TF_PLUGIN_CACHE_DIR"
	pluginCacheMayBreakEnv = "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE"
	// PluginCacheLockFile is the lock file the executor creates in a
	// shared plugin cache directory.
	PluginCacheLockFile = ".gantry-init.lock"
	// pluginCachePoll is how often a run waiting for the cache's lock
	// tries again.
	pluginCachePoll = 100 * time.Millisecond
)

// lockPluginCache takes the lock of the phase's shared plugin cache, if it
// has one, and returns what releases it. A cache the launcher cannot lock
// (a directory it may not write) is used without the lock, saying so in the
// log; a run stopped or timed out while waiting fails the phase.
func (x *execution) lockPluginCache(ctx context.Context, ph *phase) (func(), *failure) {
	none := func() {}
	dir := envValue(ph.env, pluginCacheEnv)
	if dir == "" {
		return none, nil
	}
	hostDir, shared := x.sb.sharedPath(filepath.Clean(dir))
	if !shared {
		return none, nil // the run's own directory: nobody else writes it
	}
	f, err := os.OpenFile(filepath.Join(hostDir, PluginCacheLockFile), os.O_RDWR|os.O_CREATE, 0o666)
	if errors.Is(err, fs.ErrNotExist) {
		return none, nil // terraform says the directory is missing
	}
	if err != nil {
		ph.log.printf("Could not lock the provider plugin cache %s (%v): initializing without the lock", dir, err)
		return none, nil
	}
	unlock := func() { f.Close() } // closing the file releases its lock
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return unlock, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			ph.log.printf("Could not lock the provider plugin cache %s (%v): initializing without the lock", dir, err)
			return unlock, nil
		}
		if !waiting {
			waiting = true
			ph.log.printf("Waiting for the provider plugin cache %s: another run is initializing with it", dir)
		}
		t := time.NewTimer(pluginCachePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			unlock()
			i := x.interruption(ctx)
			ph.log.printf("%s", i.note)
			return none, interrupted(i, ExitNoProcess)
		case <-t.C:
		}
	}
}

// envValue returns the value of name in env ("K=V" entries), "" if unset.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// pluginCacheDefaults sets what makes a shared plugin cache safe (see
// above) in env, a phase's environment, unless the run set it.
func pluginCacheDefaults(env map[string]string) {
	if env[pluginCacheEnv] == "" {
		return
	}
	if _, set := env[pluginCacheMayBreakEnv]; !set {
		env[pluginCacheMayBreakEnv] = "true"
	}
}
