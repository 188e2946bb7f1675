package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// PoolCertificate returns the facts of a freshly made self-signed ECDSA
// P-256 certificate for pool, as a pool's events record them: for tests
// that create pools by appending their events.
func PoolCertificate(t testing.TB, pool string) workerpool.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: pool}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return workerpool.Certificate{
		PEM:    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Serial: serial.Text(16), Fingerprint: keyring.Fingerprint(der), KeyAlgorithm: workerpool.ECDSA, KeyBits: 256,
	}
}
