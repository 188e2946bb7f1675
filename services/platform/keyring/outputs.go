package keyring

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
)

// OutputsKeyName names the server's outputs key in the key store. Workers
// that upload sensitive run outputs seal their values to its public half
// (package seal); only the server, which keeps the private half encrypted
// by its secrets keeper, can open them.
const OutputsKeyName = "run-outputs"

// LoadOrCreateOutputsKey returns the server's outputs key, an ECDSA P-256
// key (seal encrypts to it with ECDH), generating it on first start.
// Concurrent first starts agree on one key.
func LoadOrCreateOutputsKey(ctx context.Context, keys *KeyStore) (crypto.Signer, error) {
	key, err := keys.LoadOrCreate(ctx, OutputsKeyName, func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if err != nil {
		return nil, fmt.Errorf("outputs key: %w", err)
	}
	return key, nil
}
