package executor

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// The repository cache (Config.RepoCacheDir) keeps, per repository, a bare
// Git repository holding the commits runs asked for, each fetched alone
// (`git fetch --depth=1 <url> <commit>`), so that a run of a commit the
// worker has seen needs no transfer at all and a new commit needs only the
// objects the cache lacks. A run's checkout is then a new repository in its
// workspace made of copies of the cache's pack files (copies, not hard
// links: a run may write to its workspace, never to what later runs read;
// on filesystems that can, the copy shares blocks) and one `git checkout`.
//
// Layout of the cache directory:
//
//	salt          random bytes keying the names below
//	<key>.lock    flock of one entry: held by the run using it
//	<key>/        the entry's bare repository
//	<key>.refused the repository did not serve a commit alone (its mtime:
//	              when); runs clone it for repoCacheRefusedFor
//
// An entry's key is an HMAC of the repository URL and the job's Git
// credentials: a run gets objects from the cache only if it came with the
// same credentials as the run that fetched them, never another stack's
// private repository through a URL alone. Credentials go to git through its
// environment only (gitCredentialEnv), the URL on the command line: the
// entry's configuration holds neither, and FETCH_HEAD is not written.
//
// Safety: one run at a time uses an entry (the flock works between the
// launchers of a host and between the workers of one process); a fetch or
// an initialization cut short leaves no ref, so the next run fetches again;
// an entry whose objects cannot be read (the checkout fails) is removed and
// fetched again once. Size: an entry is dropped once it holds more than
// repoCacheMaxPacks packs (one per commit fetched), and the least recently
// used entries beyond repoCacheMaxEntries are removed.
const (
	repoCacheMaxPacks   = 50
	repoCacheMaxEntries = 20
	repoCachePoll       = 50 * time.Millisecond
	repoCacheRefs       = "refs/gantry/"
	// repoCacheRefusedFor is how long a repository that would not serve a
	// commit alone is cloned without trying again.
	repoCacheRefusedFor = time.Hour
)

// repoEntry is one repository of the cache, locked by this run.
type repoEntry struct {
	dir  string   // the bare repository
	lock *os.File // holds the flock; closing it releases it
}

// cacheKey names the entry of url fetched with creds.
func cacheKey(salt []byte, url string, creds *protocol.GitCredentials) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(url))
	if creds != nil {
		for _, s := range []string{creds.Username, creds.Password, creds.SSHKey} {
			m.Write([]byte{0})
			m.Write([]byte(s))
		}
	}
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// repoCacheSalt returns the cache directory's salt, making the directory
// and the salt the first time. Two workers making it at once agree on one.
func repoCacheSalt(root string) ([]byte, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(root, "salt")
	if salt, err := os.ReadFile(path); err == nil && len(salt) == 32 {
		return salt, nil
	}
	tmp, err := os.CreateTemp(root, "salt-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	if _, err := tmp.Write(salt); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// A link does not replace: whoever linked first made the salt.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	salt, err = os.ReadFile(path)
	if err == nil && len(salt) != 32 {
		// A salt cut short (an older crash): a new one, old entries orphaned.
		if err = os.Remove(path); err == nil {
			return repoCacheSalt(root)
		}
	}
	return salt, err
}

// lockRepoEntry takes the flock of the entry key under root, waiting while
// another run holds it. A run stopped while waiting fails the phase; an
// error says the cache cannot be used.
func (x *execution) lockRepoEntry(ctx context.Context, ph *phase, root, key string) (*repoEntry, *failure, error) {
	path := filepath.Join(root, key+".lock")
	waiting := false
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// The lock file may have been removed (the entry evicted)
			// between the open and the lock: then lock the new one.
			if sameFile(f, path) {
				now := time.Now()
				_ = os.Chtimes(path, now, now) // for the eviction of the least recently used
				return &repoEntry{dir: filepath.Join(root, key), lock: f}, nil, nil
			}
			f.Close()
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, err
		}
		if !waiting {
			waiting = true
			ph.log.printf("Waiting for the worker's repository cache: another run is using it")
		}
		t := time.NewTimer(repoCachePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			i := x.interruption(ctx)
			ph.log.printf("%s", i.note)
			return nil, interrupted(i, ExitNoProcess), nil
		case <-t.C:
		}
	}
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

func (e *repoEntry) unlock() {
	if e.lock != nil {
		e.lock.Close()
		e.lock = nil
	}
}

// valid reports whether the entry looks like a bare repository.
func (e *repoEntry) valid() bool {
	for _, p := range []string{"HEAD", "objects/pack", "refs"} {
		if _, err := os.Stat(filepath.Join(e.dir, p)); err != nil {
			return false
		}
	}
	return true
}

// has reports whether the entry fetched commit: the ref the fetch writes
// once the objects are in.
func (e *repoEntry) has(commit string) bool {
	data, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(repoCacheRefs+commit)))
	return err == nil && strings.TrimSpace(string(data)) == commit
}

// remove deletes the entry's repository (it is fetched again when next used).
func (e *repoEntry) remove() error {
	_ = removeAll(e.dir + ".new")
	return removeAll(e.dir)
}

// packs lists the entry's pack files and their indexes.
func (e *repoEntry) packs() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(e.dir, "objects", "pack"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range entries {
		n := d.Name()
		if d.Type().IsRegular() && strings.HasPrefix(n, "pack-") && (strings.HasSuffix(n, ".pack") || strings.HasSuffix(n, ".idx")) {
			out = append(out, n)
		}
	}
	return out, nil
}

// copyInto makes dir a repository with a copy of the entry's objects, HEAD
// detached at commit and no index, ready for `git checkout` of commit. Its
// origin is the repository's URL without credentials, as a clone's would be.
func (e *repoEntry) copyInto(dir, commit, origin string) error {
	git := filepath.Join(dir, ".git")
	// What git needs to take the directory for a repository, no more:
	// every directory made (and removed with the workspace) costs the
	// launcher, and git makes refs/heads, refs/tags and objects/info when
	// something is written there.
	for _, d := range []string{"objects/pack", "refs"} {
		if err := os.MkdirAll(filepath.Join(git, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	config := "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n"
	if origin != "" {
		config += fmt.Sprintf("[remote \"origin\"]\n\turl = %s\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n", gitConfigQuote(origin))
	}
	if err := os.WriteFile(filepath.Join(git, "config"), []byte(config), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(git, "HEAD"), []byte(commit+"\n"), 0o644); err != nil {
		return err
	}
	packs, err := e.packs()
	if err != nil {
		return err
	}
	for _, p := range packs {
		if err := copyFile(filepath.Join(e.dir, "objects", "pack", p), filepath.Join(git, "objects", "pack", p), 0o444); err != nil {
			return err
		}
	}
	// The commits whose parents were not fetched: git must not look for them.
	err = copyFile(filepath.Join(e.dir, "shallow"), filepath.Join(git, "shallow"), 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return err
}

// gitConfigQuote quotes a value for a Git configuration file.
func gitConfigQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// copyFile copies src to a new file dst (io.Copy between files uses
// copy_file_range: blocks are shared where the filesystem can).
func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// evictRepoEntries removes the least recently used entries beyond
// repoCacheMaxEntries, skipping those in use. keep is the caller's own.
func evictRepoEntries(root, keep string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type lru struct {
		key  string
		used time.Time
	}
	var locks []lru
	for _, d := range entries {
		if key, ok := strings.CutSuffix(d.Name(), ".refused"); ok && key != keep {
			if info, err := d.Info(); err == nil && time.Since(info.ModTime()) > repoCacheRefusedFor {
				_ = os.Remove(filepath.Join(root, d.Name()))
			}
			continue
		}
		key, ok := strings.CutSuffix(d.Name(), ".lock")
		if !ok || key == keep {
			continue
		}
		if info, err := d.Info(); err == nil {
			locks = append(locks, lru{key, info.ModTime()})
		}
	}
	if len(locks) < repoCacheMaxEntries {
		return
	}
	slices.SortFunc(locks, func(a, b lru) int { return a.used.Compare(b.used) })
	for _, l := range locks[:len(locks)-repoCacheMaxEntries+1] {
		path := filepath.Join(root, l.key+".lock")
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil && sameFile(f, path) {
			e := &repoEntry{dir: filepath.Join(root, l.key)}
			if e.remove() == nil {
				_ = os.Remove(path)
			}
		}
		f.Close()
	}
}
