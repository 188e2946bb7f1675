package keyring_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
)

var (
	rsaKeysOnce sync.Once
	rsaKeys     [2]*rsa.PrivateKey
)

// testRSAKey returns one of two RSA keys shared by the package's tests
// (generating them takes a while).
func testRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaKeysOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func pkcs1PEM(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func pkcs8PEM(t testing.TB, k any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func openRSAKeeper(t testing.TB, url, envKey string) (*keyring.Keeper, error) {
	t.Helper()
	k, err := keyring.OpenKeeper(context.Background(), url, keyring.WithRSAPrivateKey(envKey))
	if err == nil {
		t.Cleanup(func() { _ = k.Close() })
	}
	return k, err
}

// The built-in keeper: the operator's RSA key, from the environment or a
// file, in every common encoding, wraps each value's AES-256 data key.
func TestRSAKeyKeeperRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testRSAKey(t, 0)
	file := filepath.Join(t.TempDir(), "encryption.pem")
	if err := os.WriteFile(file, []byte(pkcs8PEM(t, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	ways := map[string]struct{ url, env string }{
		"PKCS#1 PEM in the environment":    {"rsakey://", pkcs1PEM(key)},
		"base64 of PEM in the environment": {"rsakey://", base64.StdEncoding.EncodeToString([]byte(pkcs1PEM(key)))},
		"PKCS#8 PEM in a file":             {"rsakey://" + file, ""},
	}
	plain := bytes.Repeat([]byte("terraform state "), 100_000) // 1.6 MB: far more than RSA encrypts
	var sealed []byte
	for name, w := range ways {
		k, err := openRSAKeeper(t, w.url, w.env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Scheme() != keyring.RSAKeyScheme {
			t.Errorf("%s: scheme %q", name, k.Scheme())
		}
		if sealed != nil {
			// What one opening encrypted, another opening of the same key reads.
			if got, err := k.Decrypt(ctx, sealed); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s: Decrypt of another opening's value: %v", name, err)
			}
		}
		if sealed, err = k.Encrypt(ctx, plain); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.Contains(sealed, []byte("terraform state")) {
			t.Fatalf("%s: the ciphertext shows the plaintext", name)
		}
	}
	other, err := openRSAKeeper(t, "rsakey://", pkcs1PEM(testRSAKey(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Decrypt(ctx, sealed); err == nil {
		t.Fatal("another RSA key decrypted the value")
	}
}

func TestRSAKeyKeeperRefusesBadKeysClearly(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nothing.pem")
	for _, c := range []struct{ name, url, env, want string }{
		{"no key anywhere", "rsakey://", "", "GANTRY_ENCRYPTION_RSA_PRIVATE_KEY, which is empty"},
		{"not PEM or base64", "rsakey://", "not a key!", "neither PEM nor base64 of PEM"},
		{"base64 of something else", "rsakey://", base64.StdEncoding.EncodeToString([]byte("hello")), "no PEM block"},
		{"a 1024-bit key", "rsakey://", pkcs1PEM(small), "a 1024-bit RSA key: use at least 2048 bits"},
		{"an ECDSA key", "rsakey://", pkcs8PEM(t, ec), "want an RSA key"},
		{"a certificate", "rsakey://", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", `"CERTIFICATE" block`},
		{"a missing file", "rsakey://" + missing, "", "nothing.pem"},
		{"a host", "rsakey://keyhost/key.pem", pkcs1PEM(small), "rsakey:///absolute/path/to/key.pem"},
		{"a parameter", "rsakey://?bits=4096", pkcs1PEM(small), "no host or parameters"},
	} {
		_, err := openRSAKeeper(t, c.url, c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
		}
	}
}
