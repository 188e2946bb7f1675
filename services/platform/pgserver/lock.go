package pgserver

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrDataDirInUse is returned by Start when another live process runs a cluster on the data dir.
var ErrDataDirInUse = errors.New("data dir is in use by another running gantry process")

// lockDataDir takes an exclusive flock on the data directory for as long as our server runs.
// It is what makes stale recovery safe: a postgres whose postmaster.pid is in the dir while the
// lock is free has lost its owner (the owner crashed), so stopping it cannot hurt a live run.
// The descriptor is close-on-exec, so postgres itself never holds the lock.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open data dir %s for locking: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", dir, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return f, nil
}
