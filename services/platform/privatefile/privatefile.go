// Package privatefile writes and reads files only their owner may read
// (keys, passwords, credentials): whole or not at all, mode 0600.
package privatefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Replace writes data to path atomically (mode 0600), replacing what is
// there; missing parent directories are made 0700.
func Replace(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly once renamed
	return os.Rename(tmp, path)
}

// Create writes data to path (mode 0600) unless a file is already there,
// in which case the error matches fs.ErrExist and the file is left as it
// is. A complete temporary file is linked into place, so nobody ever reads
// a half-written file and a concurrent creator's file is never replaced.
func Create(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}

// Read reads path, refusing a file that other users can read or write;
// its error matches fs.ErrNotExist when there is none.
func Read(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets other users read it; run chmod 600 on it", path, info.Mode().Perm())
	}
	return os.ReadFile(path)
}

// writeTemp writes data to a new temporary file (mode 0600, synced) next
// to path and returns its name.
func writeTemp(path string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return "", err
	}
	// CreateTemp makes the file 0600; the chmod states it rather than relies on it.
	_, werr := tmp.Write(data)
	if err := errors.Join(tmp.Chmod(0o600), werr, tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp.Name(), nil
}
