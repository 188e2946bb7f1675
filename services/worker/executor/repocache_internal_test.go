package executor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cache keeps at most repoCacheMaxEntries entries: the least recently
// used go first, but never one in use, nor the caller's own.
func TestEvictRepoEntries(t *testing.T) {
	root := t.TempDir()
	n := repoCacheMaxEntries + 5
	base := time.Now().Add(-time.Hour)
	for i := range n {
		key := fmt.Sprintf("entry%02d", i)
		if err := os.MkdirAll(filepath.Join(root, key, "objects", "pack"), 0o700); err != nil {
			t.Fatal(err)
		}
		lock := filepath.Join(root, key+".lock")
		if err := os.WriteFile(lock, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		used := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(lock, used, used); err != nil {
			t.Fatal(err)
		}
	}
	// entry00, the oldest, is in use by another run; entry01 is the caller's.
	busy, err := os.OpenFile(filepath.Join(root, "entry00.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := syscall.Flock(int(busy.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	evictRepoEntries(root, "entry01")

	left := map[string]bool{}
	for i := range n {
		key := fmt.Sprintf("entry%02d", i)
		_, errDir := os.Stat(filepath.Join(root, key))
		_, errLock := os.Stat(filepath.Join(root, key+".lock"))
		if (errDir == nil) != (errLock == nil) {
			t.Errorf("%s: directory %v, lock file %v", key, errDir, errLock)
		}
		left[key] = errDir == nil
	}
	for _, key := range []string{"entry00", "entry01", fmt.Sprintf("entry%02d", n-1)} {
		if !left[key] {
			t.Errorf("%s was removed", key)
		}
	}
	count := 0
	for key, ok := range left {
		if ok {
			count++
		} else if key >= "entry08" {
			t.Errorf("%s was removed before older entries", key)
		}
	}
	// Those the caller does not hold: at most the limit less one (its own).
	if count > repoCacheMaxEntries+1 {
		t.Errorf("%d entries left, want at most %d (one in use)", count, repoCacheMaxEntries+1)
	}
}

// Workers making the cache directory at once agree on one salt.
func TestRepoCacheSaltIsShared(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	salts := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range salts {
		wg.Go(func() {
			s, err := repoCacheSalt(root)
			if err != nil {
				t.Error(err)
			}
			salts[i] = s
		})
	}
	wg.Wait()
	for _, s := range salts[1:] {
		if len(s) != 32 || !bytes.Equal(s, salts[0]) {
			t.Fatalf("salts differ: %x and %x", salts[0], s)
		}
	}
	if a, b := cacheKey(salts[0], "https://example.com/r.git", nil), cacheKey(salts[0], "https://example.com/r.git", nil); a != b {
		t.Errorf("keys of one URL differ: %s %s", a, b)
	}
}

// An entry holding more than repoCacheMaxPacks packs is dropped after the
// run; the next run fetches into a new one.
func TestTrimRepoEntry(t *testing.T) {
	x := &execution{log: discardLogger()}
	for _, c := range []struct {
		packs int
		kept  bool
	}{{repoCacheMaxPacks, true}, {repoCacheMaxPacks + 1, false}} {
		e := &repoEntry{dir: filepath.Join(t.TempDir(), "entry")}
		pack := filepath.Join(e.dir, "objects", "pack")
		if err := os.MkdirAll(pack, 0o700); err != nil {
			t.Fatal(err)
		}
		for i := range c.packs {
			for _, ext := range []string{".pack", ".idx"} {
				if err := os.WriteFile(filepath.Join(pack, fmt.Sprintf("pack-%040d%s", i, ext)), nil, 0o444); err != nil {
					t.Fatal(err)
				}
			}
		}
		x.trimRepoEntry(e)
		if _, err := os.Stat(e.dir); (err == nil) != c.kept {
			t.Errorf("%d packs: kept %v, want %v", c.packs, err == nil, c.kept)
		}
	}
}
