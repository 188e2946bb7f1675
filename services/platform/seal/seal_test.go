package seal

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"testing"
)

// sealTestKeys are one key of every supported kind.
func sealTestKeys(t *testing.T) map[string]crypto.PrivateKey {
	t.Helper()
	keys := map[string]crypto.PrivateKey{}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys["RSA-2048"] = r
	for name, curve := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys["ECDSA "+name] = k
	}
	x, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys["ECDH P-256"] = x
	return keys
}

func seal(t *testing.T, plain []byte, key crypto.PrivateKey) []byte {
	t.Helper()
	pub, err := PublicKeyOf(key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pub)
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes, so that chunks do not follow the writes.
	for rest := plain; len(rest) > 0; {
		n := min(len(rest), 1000+len(rest)%777)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unseal(sealed []byte, key crypto.PrivateKey) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(sealed), key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestSealRoundTripsWithEveryKeyKind(t *testing.T) {
	keys := sealTestKeys(t)
	for name, key := range keys {
		for _, size := range []int{0, 1, sealChunk - 1, sealChunk, sealChunk + 1, 3*sealChunk + 5} {
			plain := make([]byte, size)
			if _, err := rand.Read(plain); err != nil {
				t.Fatal(err)
			}
			sealed := seal(t, plain, key)
			got, err := unseal(sealed, key)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s, %d bytes: unseal = %d bytes, %v", name, size, len(got), err)
			}
			// Open sizes its buffers to the value: the same plaintext.
			if got, err := Open(key, sealed); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s, %d bytes: Open = %d bytes, %v", name, size, len(got), err)
			}
			for other, otherKey := range keys {
				if other == name {
					continue
				}
				if _, err := unseal(sealed, otherKey); !errors.Is(err, ErrWrongKey) {
					t.Errorf("%s sealed, %s opened: %v, want ErrWrongKey", name, other, err)
				}
			}
		}
	}
}

func TestSealHidesThePlaintext(t *testing.T) {
	plain := bytes.Repeat([]byte("a very recognizable workspace, "), 10000)
	for name, key := range sealTestKeys(t) {
		sealed := seal(t, plain, key)
		for i := 0; i+16 <= len(plain); i += 997 {
			if bytes.Contains(sealed, plain[i:i+16]) {
				t.Fatalf("%s: the sealed stream contains plaintext at %d", name, i)
			}
		}
		if again := seal(t, plain, key); bytes.Equal(again[:200], sealed[:200]) {
			t.Errorf("%s: sealing twice gave the same bytes", name)
		}
	}
}

func TestSealDetectsTampering(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte{7}, 2*sealChunk+100)
	sealed := seal(t, plain, key)
	headerLen := len(sealMagic) + 4 + 65 // an uncompressed P-256 point
	chunk := sealChunk + 16
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		return c
	}
	swapped := bytes.Clone(sealed)
	copy(swapped[headerLen:], sealed[headerLen+chunk:headerLen+2*chunk])
	copy(swapped[headerLen+chunk:], sealed[headerLen:headerLen+chunk])
	for name, tampered := range map[string][]byte{
		"truncated by a byte":        sealed[:len(sealed)-1],
		"truncated at a chunk":       sealed[:headerLen+chunk],
		"truncated after the header": sealed[:headerLen],
		"extended":                   append(bytes.Clone(sealed), 0),
		"a flipped header byte":      flip(len(sealMagic) + 10),
		"a flipped chunk byte":       flip(headerLen + chunk + 5),
		"a flipped tag byte":         flip(len(sealed) - 1),
		"chunks swapped":             swapped,
	} {
		if got, err := unseal(tampered, key); err == nil {
			t.Errorf("%s: opened %d bytes", name, len(got))
		}
		if got, err := Open(key, tampered); err == nil {
			t.Errorf("%s: Open gave %d bytes", name, len(got))
		}
	}
	for name, bad := range map[string][]byte{
		"not sealed":  []byte("PK\x03\x04 a zip file"),
		"new version": append([]byte(sealMagic), 9, algECDHP256, 0, 0),
		"empty":       nil,
	} {
		if _, err := unseal(bad, key); err == nil || errors.Is(err, ErrWrongKey) {
			t.Errorf("%s: %v, want an error that says what is wrong", name, err)
		}
	}
}

func TestSealRefusesWeakOrUnknownKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]crypto.PublicKey{
		"RSA-1024": &small.PublicKey, "X25519": x25519.PublicKey(), "a string": "key",
	} {
		if _, err := NewWriter(io.Discard, pub); err == nil {
			t.Errorf("%s: sealing worked", name)
		}
	}
	if _, err := PublicKeyOf(fmt.Stringer(nil)); err == nil {
		t.Error("PublicKeyOf(nil) worked")
	}
}
