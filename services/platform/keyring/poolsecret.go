package keyring

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// poolSecretBytes is the entropy of a pool secret.
const poolSecretBytes = 32

// NewPoolSecret returns a new pool secret (32 random bytes, base64url
// without padding) and the hash to store instead of it. The secret goes
// into the pool token only.
func NewPoolSecret() (secret, hash string, err error) {
	b := make([]byte, poolSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("pool secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashPoolSecret(secret), nil
}

// HashPoolSecret returns the hex SHA-256 of secret: what a pool stores, and
// what a launcher's secret is hashed to before workerpool.State.SecretMatches
// compares it. A fast hash is right: the secret is 256 random bits, so a slow
// hash would add nothing against guessing.
func HashPoolSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
