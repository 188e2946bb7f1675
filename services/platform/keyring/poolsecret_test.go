package keyring_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
)

func TestNewPoolSecret(t *testing.T) {
	t.Parallel()
	secret, hash, err := keyring.NewPoolSecret()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, %v", secret, len(raw), err)
	}
	sum := sha256.Sum256([]byte(secret))
	if hash != hex.EncodeToString(sum[:]) || keyring.HashPoolSecret(secret) != hash {
		t.Errorf("hash %s is not the hex SHA-256 of the secret", hash)
	}
	other, otherHash, err := keyring.NewPoolSecret()
	if err != nil || other == secret || otherHash == hash {
		t.Errorf("two secrets are equal (%v)", err)
	}
}
