package seal

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// BenchmarkOpen opens a sealed secret of 64 bytes with each kind of pool
// key a launcher may have: what every secret variable, mounted file and
// phase's state credentials cost a run.
//
//	go test ./services/platform/seal -run '^$' -bench Open -benchtime 200x
func BenchmarkOpen(b *testing.B) {
	keys := []struct {
		name string
		make func() (crypto.Signer, error)
	}{
		{"RSA-2048", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
		{"RSA-4096", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 4096) }},
		{"P-256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
		{"P-384", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }},
	}
	for _, k := range keys {
		b.Run(k.name, func(b *testing.B) {
			priv, err := k.make()
			if err != nil {
				b.Fatal(err)
			}
			sealed, err := Bytes(priv.Public(), make([]byte, 64))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Open(priv, sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
