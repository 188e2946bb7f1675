package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) {
	testenv.MainNoLeaks(m)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for an issuer.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// newEd25519 returns a fresh Ed25519 private key.
func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newP256 returns a fresh ECDSA P-256 private key.
func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keySet returns the set signing with signer and also verifying with also.
func keySet(t testing.TB, signer crypto.Signer, also ...crypto.PublicKey) *auth.KeySet {
	t.Helper()
	ks, err := auth.NewKeySet(signer, also...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// newIssuer returns an issuer of ks on clock c.
func newIssuer(t testing.TB, ks *auth.KeySet, c *clock) *auth.Issuer {
	t.Helper()
	iss, err := auth.NewIssuer(ks, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// pkcs8PEM encodes key as a PKCS#8 PEM block.
func pkcs8PEM(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// publicPEM encodes pub as a PKIX PEM block.
func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// keyEnv is a migrated database with an aggregate repository, where API
// keys are created and revoked through the real aggregate.
type keyEnv struct {
	store *eventstore.Store
	aggs  *aggregate.Repository
}

func newKeyEnv(t testing.TB) *keyEnv {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	_, store := testenv.EventStore(t, reg)
	return &keyEnv{store: store, aggs: testenv.Aggregates(t, store)}
}

var keySeq struct {
	sync.Mutex
	n int
}

// createKey creates an API key named name with role and returns its id and
// the key the user holds.
func (e *keyEnv) createKey(t testing.TB, name string, role apikey.Role) (keyID, key string) {
	t.Helper()
	keySeq.Lock()
	keySeq.n++
	keyID = "ak_" + strings.Repeat("0", 28) + hex.EncodeToString([]byte{byte(keySeq.n >> 8), byte(keySeq.n)})
	keySeq.Unlock()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	secret := hex.EncodeToString(raw)
	e.do(t, keyID, apikey.Create{KeyID: keyID, Name: name, Role: role, SecretHash: apikey.HashSecret(secret), Actor: "user:setup", At: t0})
	return keyID, apikey.FormatKey(keyID, secret)
}

// revokeKey revokes the key keyID.
func (e *keyEnv) revokeKey(t testing.TB, keyID string) {
	t.Helper()
	e.do(t, keyID, apikey.Revoke{Actor: "user:setup", At: t0})
}

func (e *keyEnv) do(t testing.TB, keyID string, cmd apikey.Command) {
	t.Helper()
	_, err := e.aggs.Execute(context.Background(), "test", func(ctx context.Context, u *aggregate.Unit) error {
		k, err := aggregate.Get(ctx, u, aggregate.APIKey, keyID)
		if err != nil {
			return err
		}
		_, err = k.Do(cmd)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sessions returns sessions on e's keys, signed by a fresh Ed25519 key on
// the real clock, and their issuer.
func (e *keyEnv) sessions(t testing.TB) (*auth.Sessions, *auth.Issuer) {
	t.Helper()
	return e.sessionsOn(t, time.Now)
}

// sessionsOn is sessions on the clock now.
func (e *keyEnv) sessionsOn(t testing.TB, now func() time.Time) (*auth.Sessions, *auth.Issuer) {
	t.Helper()
	iss, err := auth.NewIssuer(keySet(t, newEd25519(t)), now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewSessions(iss, e.aggs)
	if err != nil {
		t.Fatal(err)
	}
	return s, iss
}

// exchange opens a session for key and returns its token.
func exchange(t testing.TB, s *auth.Sessions, key string) string {
	t.Helper()
	sess, err := s.Exchange(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return sess.Token
}

var b64 = base64.RawURLEncoding

func part(t testing.TB, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(raw)
}

// forge builds a token with any header and claims, signed by sign.
func forge(t testing.TB, header, claims map[string]any, sign func(signingInput string) []byte) string {
	t.Helper()
	input := part(t, header) + "." + part(t, claims)
	return input + "." + b64.EncodeToString(sign(input))
}

// signRaw signs already encoded header and claims parts.
func signRaw(header, claims string, sign func(string) []byte) string {
	input := header + "." + claims
	return input + "." + b64.EncodeToString(sign(input))
}

// ed25519Signer signs forged tokens with key.
func ed25519Signer(key ed25519.PrivateKey) func(string) []byte {
	return func(input string) []byte { return ed25519.Sign(key, []byte(input)) }
}

// decodePart returns a part of a token without verifying it.
func decodePart(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := b64.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
