package keyring_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// Test keys are generated once: RSA 4096 takes a while.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	keys := map[string]crypto.Signer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, gen := range map[string]func() (crypto.Signer, error){
		"rsa4096": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 4096) },
		"rsa1024": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 1024) },
		"p256":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
		"p384":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
		"ed25519": genEd25519,
	} {
		wg.Go(func() {
			k, err := gen()
			if err != nil {
				panic(err)
			}
			mu.Lock()
			keys[name] = k
			mu.Unlock()
		})
	}
	wg.Wait()
	return keys
})

// csrDER is what `openssl req -new -key <key> -subj /CN=…` makes, in DER.
func csrDER(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "my workers", Organization: []string{"ACME"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func csrPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER(t, key)})
}

func TestParseCSRReportsKeyFacts(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	cases := []struct {
		key   string
		alg   workerpool.KeyAlgorithm
		bits  int
		curve string
	}{
		{"rsa4096", workerpool.RSA, 4096, ""},
		{"rsa1024", workerpool.RSA, 1024, ""},
		{"p256", workerpool.ECDSA, 256, "P-256"},
		{"p384", workerpool.ECDSA, 384, "P-384"},
		{"ed25519", "Ed25519", 256, ""},
	}
	for _, tc := range cases {
		info, err := keyring.ParseCSR(csrPEM(t, keys[tc.key]))
		if err != nil {
			t.Errorf("%s: %v", tc.key, err)
			continue
		}
		if info.KeyAlgorithm != tc.alg || info.KeyBits != tc.bits || info.Curve != tc.curve {
			t.Errorf("%s: got %s/%d/%q, want %s/%d/%q", tc.key, info.KeyAlgorithm, info.KeyBits, info.Curve, tc.alg, tc.bits, tc.curve)
		}
	}
}

func TestParseCSRRefusals(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	good := csrDER(t, keys["p256"])
	broken := append([]byte(nil), good...)
	broken[len(broken)-1] ^= 0x01 // the signature is the last field
	ecKey, err := x509.MarshalECPrivateKey(keys["p256"].(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	// A certificate where a CSR belongs: what a user uploads who mixed the files up.
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkix.Name{CommonName: "x"}}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, keys["p256"].Public(), keys["p256"])
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	cases := []struct {
		name  string
		input []byte
		says  string
	}{
		{"empty", nil, "PEM"},
		{"garbage", []byte("this is not a CSR\x00\xff"), "PEM"},
		{"DER without PEM", good, "PEM"},
		{"certificate", block("CERTIFICATE", certDER), "CERTIFICATE REQUEST"},
		{"private key", block("EC PRIVATE KEY", ecKey), "private key"},
		{"garbage in a CSR block", block("CERTIFICATE REQUEST", []byte("garbage")), "not a valid certificate request"},
		{"broken signature", block("CERTIFICATE REQUEST", broken), "signature"},
		{"two requests", append(block("CERTIFICATE REQUEST", good), block("CERTIFICATE REQUEST", good)...), "exactly one"},
		{"too large", append(block("CERTIFICATE REQUEST", good), make([]byte, keyring.MaxCSRSize)...), "at most"},
	}
	for _, tc := range cases {
		info, err := keyring.ParseCSR(tc.input)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "csr" || !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: got %+v, %v; want a validation error of field csr", tc.name, info, err)
			continue
		}
		if !strings.Contains(ve.Problem, tc.says) {
			t.Errorf("%s: problem %q does not say %q", tc.name, ve.Problem, tc.says)
		}
	}
	// The unbroken request passes, so the refusal above is the signature's doing.
	if _, err := keyring.ParseCSR(block("CERTIFICATE REQUEST", good)); err != nil {
		t.Fatalf("intact request: %v", err)
	}
}
