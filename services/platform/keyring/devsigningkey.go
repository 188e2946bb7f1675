package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gantryhq/gantry/services/platform/privatefile"
)

// DevSigningKeyFile is the name of the session token signing key in a dev
// data directory.
const DevSigningKeyFile = "signing-key.pem"

// DevSigningKeyPEM returns the PKCS#8 PEM of the Ed25519 key `gantry dev`
// signs session tokens with, kept in <dataDir>/signing-key.pem (mode 0600)
// and created on first use, so that sessions survive a restart. Two
// processes starting at once end up with the same key.
func DevSigningKeyPEM(dataDir string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("dev signing key: create %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, DevSigningKeyFile)
	key, err := readDevSigningKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createDevSigningKey(path); err != nil {
			return nil, err
		}
		key, err = readDevSigningKey(path)
	}
	return key, err
}

// readDevSigningKey reads the key file at path, refusing one that other
// users can read; fs.ErrNotExist when there is none.
func readDevSigningKey(path string) ([]byte, error) {
	key, err := privatefile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("dev signing key: %w", err)
	}
	return key, nil
}

func createDevSigningKey(path string) error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("dev signing key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("dev signing key: encode: %w", err)
	}
	if err := installNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return fmt.Errorf("dev signing key: %w", err)
	}
	return nil
}
