package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// An envelope is what Keeper.Encrypt makes: the plaintext encrypted with a
// fresh AES-256-GCM data key, and that data key encrypted ("wrapped") by the
// keeper's driver:
//
//	envelopeMagic | len (uint16, big endian) | wrapped data key (len bytes) | nonce (12) | AES-256-GCM ciphertext and tag
//
// The GCM tag authenticates everything before the nonce as well. A KMS then
// only ever encrypts 32 bytes, whatever the size of the value: AWS KMS takes
// at most 4 KiB and an Azure Key Vault RSA key less than 500 bytes, while
// state files reach 64 MiB.
const envelopeMagic = "gantry-envelope-v1\n"

// dataKeySize is the AES-256 key size.
const dataKeySize = 32

// sealEnvelope encrypts plaintext with a new data key that wrap encrypts.
func sealEnvelope(ctx context.Context, wrap func(context.Context, []byte) ([]byte, error), plaintext []byte) ([]byte, error) {
	key := make([]byte, dataKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate a data key: %w", err)
	}
	defer clear(key)
	wrapped, err := wrap(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("wrap the data key: %w", err)
	}
	if len(wrapped) > 0xffff {
		return nil, fmt.Errorf("wrap the data key: the wrapped key has %d bytes, more than an envelope holds", len(wrapped))
	}
	aead, err := newDataCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(envelopeMagic)+2+len(wrapped)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, envelopeMagic...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	header := len(out)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate a nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, out[:header]), nil
}

// isEnvelope reports whether ciphertext was made by sealEnvelope.
func isEnvelope(ciphertext []byte) bool {
	return bytes.HasPrefix(ciphertext, []byte(envelopeMagic))
}

// errDamagedEnvelope is the error of an envelope cut short.
var errDamagedEnvelope = errors.New("the envelope is cut short or damaged")

// openEnvelope returns the plaintext of an envelope whose data key unwrap
// decrypts.
func openEnvelope(ctx context.Context, unwrap func(context.Context, []byte) ([]byte, error), ciphertext []byte) ([]byte, error) {
	rest := ciphertext[len(envelopeMagic):]
	if len(rest) < 2 {
		return nil, errDamagedEnvelope
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < n {
		return nil, errDamagedEnvelope
	}
	wrapped, rest := rest[:n], rest[n:]
	header := ciphertext[:len(ciphertext)-len(rest)]
	key, err := unwrap(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrap the data key: %w", err)
	}
	defer clear(key)
	if len(key) != dataKeySize {
		return nil, fmt.Errorf("unwrap the data key: %d bytes, want %d", len(key), dataKeySize)
	}
	aead, err := newDataCipher(key)
	if err != nil {
		return nil, err
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errDamagedEnvelope
	}
	nonce, sealed := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, header)
	if err != nil {
		return nil, errDamagedEnvelope
	}
	return plain, nil
}

func newDataCipher(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("data key cipher: %w", err)
	}
	return aead, nil
}
