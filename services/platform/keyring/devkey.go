package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/secrets/localsecrets"

	"github.com/gantryhq/gantry/services/platform/privatefile"
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
		if err := createDevKey(path); err != nil {
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
	text, err := privatefile.Read(path)
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
func createDevKey(path string) error {
	key := make([]byte, devKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("dev secrets key: generate: %w", err)
	}
	if err := installNewFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
		return fmt.Errorf("dev secrets key: %w", err)
	}
	return nil
}

// installNewFile writes content to path (mode 0600) unless a file is
// already there: two starters at once end up with one of their keys.
func installNewFile(path string, content []byte) error {
	if err := privatefile.Create(path, content); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
