package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// signingPEM returns a new Ed25519 private key's PEM, the file holding it,
// and its public key's PEM.
func signingPEM(t testing.TB) (private []byte, file string, public []byte) {
	t.Helper()
	dir := t.TempDir()
	private, err := keyring.DevSigningKeyPEM(dir)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(private)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return private, filepath.Join(dir, keyring.DevSigningKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestSigningKeysFromEnv(t *testing.T) {
	a, aFile, aPub := signingPEM(t)
	_, bFile, bPub := signingPEM(t)
	pubFile := filepath.Join(t.TempDir(), "old.pem")
	if err := os.WriteFile(pubFile, aPub, 0o644); err != nil {
		t.Fatal(err)
	}
	good := []struct {
		name  string
		vars  map[string]string
		where string
		keys  int
	}{
		{"inline", map[string]string{envSigningKey: string(a)}, envSigningKey, 1},
		{"file", map[string]string{envSigningKeyFile: aFile}, aFile, 1},
		{"with verify keys inline", map[string]string{envSigningKeyFile: bFile, envVerifyKeys: string(aPub)}, bFile, 2},
		{"with a verify key file", map[string]string{envSigningKeyFile: bFile, envVerifyKeysFile: pubFile}, bFile, 2},
		{"with both verify keys", map[string]string{envSigningKeyFile: aFile, envVerifyKeys: string(append(bPub, aPub...))}, aFile, 2},
	}
	for _, tc := range good {
		ks, where, err := signingKeysFromEnv(env(tc.vars), "")
		if err != nil || where != tc.where || len(ks.KeyIDs()) != tc.keys || !slices.Equal(ks.Algorithms(), []string{"EdDSA"}) {
			t.Errorf("%s: %d keys from %q (%v), want %d from %q", tc.name, len(ks.KeyIDs()), where, err, tc.keys, tc.where)
		}
	}

	bad := []struct {
		name string
		vars map[string]string
		says string
	}{
		{"nothing", nil, envSigningKeyFile + " (or " + envSigningKey + ") is required"},
		{"both forms", map[string]string{envSigningKey: string(a), envSigningKeyFile: aFile}, "not both"},
		{"missing file", map[string]string{envSigningKeyFile: filepath.Join(t.TempDir(), "none.pem")}, envSigningKeyFile + ":"},
		{"not PEM", map[string]string{envSigningKey: "hunter2"}, "signing key: not PEM"},
		{"a public key", map[string]string{envSigningKey: string(aPub)}, "not a private key"},
		{"bad verify keys", map[string]string{envSigningKey: string(a), envVerifyKeys: "junk"}, "verify keys: not PEM"},
		{"both verify forms", map[string]string{envSigningKey: string(a), envVerifyKeys: string(aPub), envVerifyKeysFile: pubFile}, "not both"},
	}
	for _, tc := range bad {
		if _, _, err := signingKeysFromEnv(env(tc.vars), ""); err == nil || !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.says)
		}
	}

	// gantry dev: a key in the data directory, made once.
	dataDir := filepath.Join(t.TempDir(), "data")
	first, where, err := signingKeysFromEnv(env(nil), dataDir)
	if err != nil || where != filepath.Join(dataDir, keyring.DevSigningKeyFile) {
		t.Fatalf("dev key from %q: %v", where, err)
	}
	again, _, err := signingKeysFromEnv(env(nil), dataDir)
	if err != nil || again.SigningKeyID() != first.SigningKeyID() {
		t.Errorf("the dev key changed across starts (%v)", err)
	}
	if ks, where, err := signingKeysFromEnv(env(map[string]string{envSigningKeyFile: aFile}), dataDir); err != nil || where != aFile || ks.SigningKeyID() == first.SigningKeyID() {
		t.Errorf("dev with an operator's key: from %q, %v", where, err)
	}
}

func TestServerNeedsASigningKey(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		says string
	}{
		{nil, "gantry: GANTRY_SIGNING_KEY_FILE (or GANTRY_SIGNING_KEY) is required"},
		{map[string]string{envSigningKey: "hunter2"}, "gantry: GANTRY_SIGNING_KEY_FILE/GANTRY_VERIFY_KEYS_FILE: signing key: not PEM"},
	} {
		vars := map[string]string{
			"GANTRY_DATABASE_URL": "postgres://gantry@db.invalid/gantry", "GANTRY_NATS_URL": "nats://nats.invalid:4222",
			"GANTRY_SECRETS_URL": "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=", "GANTRY_BLOB_URL": "mem://",
		}
		for k, v := range tc.vars {
			vars[k] = v
		}
		var stdout, stderr strings.Builder
		code := run(t.Context(), []string{"server"}, env(vars), &stdout, &stderr)
		if code != 1 || !strings.HasPrefix(stderr.String(), tc.says) || strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("exit %d, stderr %q; want %q", code, stderr.String(), tc.says)
		}
	}
}

// TestSigningKeyRotationAcrossReplicas rotates the signing key of a
// deployment replica by replica, as docs/operations.md tells operators to:
// add the new key's public half everywhere, then sign with the new key while
// the old one still verifies, then drop the old key.
func TestSigningKeyRotationAcrossReplicas(t *testing.T) {
	oldPEM, _, oldPub := signingPEM(t)
	_, newFile, newPub := signingPEM(t)
	keysFrom := func(vars map[string]string) func(*serverConfig) {
		ks, _, err := signingKeysFromEnv(env(vars), "")
		if err != nil {
			t.Fatal(err)
		}
		return func(c *serverConfig) { c.signingKeys = ks }
	}
	srv := startServer(t, keysFrom(map[string]string{envSigningKey: string(oldPEM)}))
	key := srv.apiKey(t, "rotor", apikey.RoleReader)
	oldToken := srv.session(t, key)

	added := srv.replica(t, keysFrom(map[string]string{envSigningKey: string(oldPEM), envVerifyKeys: string(newPub)}))
	switched := srv.replica(t, keysFrom(map[string]string{envSigningKeyFile: newFile, envVerifyKeys: string(oldPub)}))
	newToken := switched.session(t, key)
	done := srv.replica(t, keysFrom(map[string]string{envSigningKeyFile: newFile}))

	accepts := func(s *testServer, token string) bool {
		_, err := s.as(token).stacks.ListStacks(testCtx(t), connect.NewRequest(&gantryv1.ListStacksRequest{}))
		if err != nil && connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, tc := range []struct {
		name     string
		s        *testServer
		old, new bool
	}{
		{"not yet rotated", srv, true, false},
		{"new key added", added, true, true},
		{"signing with the new key", switched, true, true},
		{"old key removed", done, false, true},
	} {
		if got := accepts(tc.s, oldToken); got != tc.old {
			t.Errorf("%s: accepts the old key's token %v, want %v", tc.name, got, tc.old)
		}
		if got := accepts(tc.s, newToken); got != tc.new {
			t.Errorf("%s: accepts the new key's token %v, want %v", tc.name, got, tc.new)
		}
	}
	// Once rotated, signing in works as before: the key is what matters.
	if !accepts(done, done.session(t, key)) {
		t.Error("a session opened after the rotation is refused")
	}
}
