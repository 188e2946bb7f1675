package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"gocloud.dev/secrets/localsecrets"
)

func TestKeeperEncryptsLargeValuesAsEnvelopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := openKeeper(t, keeperURL(4))
	plain := make([]byte, 5<<20) // more than any KMS encrypts in one call
	if _, err := rand.Read(plain); err != nil {
		t.Fatal(err)
	}
	ct, err := k.Encrypt(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ct, []byte("gantry-envelope-v1\n")) {
		t.Fatalf("ciphertext starts %q, want the envelope header", ct[:20])
	}
	got, err := k.Decrypt(ctx, ct)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt of 5 MiB: %d bytes, %v", len(got), err)
	}
	// Every byte of the envelope is authenticated: the wrapped key, the
	// nonce, the ciphertext, and the lengths.
	for _, i := range []int{len("gantry-envelope-v1\n"), len("gantry-envelope-v1\n") + 1, 30, len(ct) - 1} {
		damaged := bytes.Clone(ct)
		damaged[i] ^= 0x40
		if _, err := k.Decrypt(ctx, damaged); err == nil {
			t.Errorf("the envelope with byte %d changed decrypted", i)
		}
	}
	if _, err := k.Decrypt(ctx, ct[:len(ct)/2]); err == nil {
		t.Error("a truncated envelope decrypted")
	}
	if _, err := k.Decrypt(ctx, []byte("gantry-envelope-v1\n\xff\xff")); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("a header without its key: %v", err)
	}
}

// Values that Gantry encrypted with base64key:// before envelopes (the
// driver's own format) are still read.
func TestKeeperReadsValuesFromBeforeEnvelopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var key [32]byte
	raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(keeperURL(5), localsecrets.Scheme+"://"))
	if err != nil {
		t.Fatal(err)
	}
	copy(key[:], raw)
	legacy := localsecrets.NewKeeper(key)
	defer legacy.Close()
	old, err := legacy.Encrypt(ctx, []byte("encrypted by an earlier version"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := openKeeper(t, keeperURL(5)).Decrypt(ctx, old)
	if err != nil || string(got) != "encrypted by an earlier version" {
		t.Fatalf("Decrypt of a value from before envelopes = %q, %v", got, err)
	}
	if _, err := openKeeper(t, keeperURL(6)).Decrypt(ctx, old); err == nil {
		t.Fatal("another key decrypted a value from before envelopes")
	}
}
