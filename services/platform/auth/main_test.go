package auth_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/keyring"
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

// newKeyStore returns a key store on a fresh, migrated database.
func newKeyStore(t testing.TB) *keyring.KeyStore {
	t.Helper()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	url, err := keyring.DevKeeperURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keeper, err := keyring.OpenKeeper(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keeper.Close() })
	return keyring.NewKeyStore(pool, keeper)
}

// newIssuer returns an issuer on a fresh database, its clock and its key store.
func newIssuer(t testing.TB) (*auth.Issuer, *clock, *keyring.KeyStore) {
	t.Helper()
	keys := newKeyStore(t)
	c := &clock{now: t0}
	iss, err := auth.NewIssuer(context.Background(), keys, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return iss, c, keys
}

// signingKey returns the issuer's private key, loaded from its key store.
func signingKey(t testing.TB, keys *keyring.KeyStore) ed25519.PrivateKey {
	t.Helper()
	k, err := keys.LoadOrCreate(context.Background(), auth.SigningKeyName, func() (crypto.Signer, error) {
		t.Fatal("the signing key does not exist")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
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

// ed25519Signer signs forged tokens with key.
func ed25519Signer(key ed25519.PrivateKey) func(string) []byte {
	return func(input string) []byte { return ed25519.Sign(key, []byte(input)) }
}

// validClaims are claims the issuer would accept at t0.
func validClaims() map[string]any {
	return map[string]any{"iss": "gantry", "sub": "alice", "role": "user", "jti": "tok_1", "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
}

// decodeClaims returns the claims of a token without verifying it.
func decodeClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
