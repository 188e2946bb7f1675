package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"gocloud.dev/secrets/localsecrets"
)

// DevKeyFile is the name of the local secrets key in a dev data directory.
const DevKeyFile = "secrets.key"

// devKeySize is the key size of localsecrets (NaCl secretbox).
const devKeySize = 32

// DevKeeperURL returns the base64key:// URL of the local key in
// <dataDir>/secrets.key, creating a random one (mode 0600) on first use, so
// that what `gantry dev` encrypts can still be read after a restart. Two
// processes starting at once end up with the same key. The URL holds the
// key: pass it to OpenKeeper, never to a log.
func DevKeeperURL(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("dev secrets key: create %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, DevKeyFile)
	key, err := readDevKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createDevKey(dataDir, path); err != nil {
			return "", err
		}
		key, err = readDevKey(path)
	}
	if err != nil {
		return "", err
	}
	return localsecrets.Scheme + "://" + base64.URLEncoding.EncodeToString(key), nil
}

// readDevKey reads and checks the key file at path; fs.ErrNotExist when
// there is none.
func readDevKey(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dev secrets key: %w", err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dev secrets key %s: mode %04o lets other users read it; run chmod 600 on it", path, info.Mode().Perm())
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dev secrets key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil || len(key) != devKeySize {
		return nil, fmt.Errorf("dev secrets key %s: not %d bytes in base64; restore it from a backup (a new key cannot read what the old one encrypted)", path, devKeySize)
	}
	return key, nil
}

// createDevKey writes a new random key to path unless a key is already
// there.
func createDevKey(dir, path string) error {
	key := make([]byte, devKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("dev secrets key: generate: %w", err)
	}
	if err := installNewFile(dir, path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
		return fmt.Errorf("dev secrets key: %w", err)
	}
	return nil
}

// installNewFile writes content to path (mode 0600) unless a file is
// already there. It is written to a temporary file that is then linked into
// place, so nobody ever reads a half-written file and a concurrent
// starter's file is never replaced.
func installNewFile(dir, path string, content []byte) error {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; the chmod states it rather than relies on it.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}
