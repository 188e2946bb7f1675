package keyring_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
)

func TestKeeperRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := openKeeper(t, keeperURL(1))
	plain := []byte("terraform state credentials")
	ct, err := k.Encrypt(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, plain) {
		t.Fatal("ciphertext contains the plaintext")
	}
	ct2, err := k.Encrypt(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ct, ct2) {
		t.Error("two encryptions of the same plaintext are equal: no fresh nonce")
	}
	got, err := k.Decrypt(ctx, ct)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}

	// The same key opened again (a restart) reads it too.
	again := openKeeper(t, keeperURL(1))
	if got, err := again.Decrypt(ctx, ct2); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt after reopening = %q, %v", got, err)
	}
}

func TestKeeperRefusesWrongKeyAndDamage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := openKeeper(t, keeperURL(1))
	ct, err := k.Encrypt(ctx, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	other := openKeeper(t, keeperURL(2))
	if got, err := other.Decrypt(ctx, ct); err == nil {
		t.Fatalf("another key decrypted the ciphertext to %q", got)
	}
	damaged := bytes.Clone(ct)
	damaged[len(damaged)-1] ^= 1
	if _, err := k.Decrypt(ctx, damaged); err == nil {
		t.Fatal("damaged ciphertext decrypted")
	}
	if _, err := k.Decrypt(ctx, []byte("short")); err == nil {
		t.Fatal("garbage decrypted")
	}
}

func TestOpenKeeperRefusesBadURLsWithoutLeakingThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, u := range []string{
		"",
		"c2VjcmV0LWtleS1tYXRlcmlhbA", // no scheme
		"base64key://",               // would be a random key, lost at restart
		"base64key://c2VjcmV0LWtleS1tYXRlcmlhbA==",                          // not 32 bytes
		"base64key://c2VjcmV0 LWtleS1tYXRlcmlhbA==",                         // not a URL
		"base64key://%zzc2VjcmV0LWtleS1tYXRlcmlhbA==",                       // bad escape
		"nosuchkms://c2VjcmV0LWtleS1tYXRlcmlhbA?region=x",                   // not a keeper Gantry has
		"rsakey://c2VjcmV0LWtleS1tYXRlcmlhbA",                               // a host instead of a file path
		"base64key://c2VjcmV0LWtleS1tYXRlcmlhbC0zMi1ieXRlcy1vayE=?region=x", // unknown parameter
	} {
		k, err := keyring.OpenKeeper(ctx, u)
		if err == nil {
			_ = k.Close()
			t.Errorf("OpenKeeper(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "LWtleS1") {
			t.Errorf("OpenKeeper(%q) error repeats the key: %v", u, err)
		}
	}
}

func TestKeeperClosed(t *testing.T) {
	t.Parallel()
	k, err := keyring.OpenKeeper(context.Background(), keeperURL(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Encrypt(context.Background(), []byte("x")); err == nil {
		t.Fatal("a closed keeper encrypted")
	}
}
