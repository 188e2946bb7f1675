package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestParseKeySet(t *testing.T) {
	t.Parallel()
	ed, p256 := newEd25519(t), newP256(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	sec1PEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})

	good := []struct {
		name            string
		signing, verify []byte
		algs            []string
		keys            int
	}{
		{"Ed25519 PKCS#8", pkcs8PEM(t, ed), nil, []string{"EdDSA"}, 1},
		{"P-256 PKCS#8", pkcs8PEM(t, p256), nil, []string{"ES256"}, 1},
		{"P-256 SEC 1", sec1PEM, []byte("\n"), []string{"ES256"}, 1},
		{"with a public verify key", pkcs8PEM(t, ed), publicPEM(t, p256.Public()), []string{"ES256", "EdDSA"}, 2},
		{"with a private verify key", pkcs8PEM(t, p256), pkcs8PEM(t, ed), []string{"ES256", "EdDSA"}, 2},
		{"with several verify keys", pkcs8PEM(t, ed), append(publicPEM(t, newEd25519(t).Public()), sec1PEM...), []string{"ES256", "EdDSA"}, 3},
		{"the signing key again among the verify keys", pkcs8PEM(t, ed), publicPEM(t, ed.Public()), []string{"EdDSA"}, 1},
	}
	for _, tc := range good {
		ks, err := auth.ParseKeySet(tc.signing, tc.verify)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(ks.Algorithms(), tc.algs) || len(ks.KeyIDs()) != tc.keys {
			t.Errorf("%s: algorithms %v, %d keys; want %v, %d", tc.name, ks.Algorithms(), len(ks.KeyIDs()), tc.algs, tc.keys)
		}
		iss := newIssuer(t, ks, &clock{now: t0})
		tok, _, err := iss.Issue(keyID, time.Minute)
		if err != nil {
			t.Errorf("%s: issue: %v", tc.name, err)
			continue
		}
		if _, err := iss.Verify(tok); err != nil {
			t.Errorf("%s: verify: %v", tc.name, err)
		}
	}

	bad := []struct {
		name, signing, verify, says string
	}{
		{"no signing key", "", "", "no PEM block"},
		{"not PEM", "hello", "", "not PEM"},
		{"truncated", string(pkcs8PEM(t, ed)[:60]), "", "not PEM"},
		{"two signing keys", string(append(pkcs8PEM(t, ed), pkcs8PEM(t, p256)...)), "", "found 2"},
		{"a public key to sign with", string(publicPEM(t, ed.Public())), "", "not a private key"},
		{"RSA", string(pkcs8PEM(t, rsaKey)), "", "Ed25519 key or an ECDSA key on P-256"},
		{"P-384", string(pkcs8PEM(t, p384)), "", "P-256"},
		{"an RSA verify key", string(pkcs8PEM(t, ed)), string(publicPEM(t, rsaKey.Public())), "verify key"},
		{"a P-384 verify key", string(pkcs8PEM(t, ed)), string(publicPEM(t, p384.Public())), "P-256"},
		{"a certificate as verify key", string(pkcs8PEM(t, ed)), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "verify keys"},
		{"garbage after the verify keys", string(pkcs8PEM(t, ed)), string(publicPEM(t, p256.Public())) + "junk", "not PEM"},
	}
	for _, tc := range bad {
		_, err := auth.ParseKeySet([]byte(tc.signing), []byte(tc.verify))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.says)
		}
		if err != nil && strings.Contains(err.Error(), "BEGIN") {
			t.Errorf("%s: the error quotes the PEM: %v", tc.name, err)
		}
	}
}
