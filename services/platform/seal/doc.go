// Package seal encrypts data to a worker pool's public key, so that only
// holders of the pool's private key can read it: the saved workspaces of
// UNCONFIRMED runs (a stream, NewWriter and NewReader) and the secrets a
// run is given (a value, Bytes and Open). The server seals; workers open.
package seal

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
)

// Bytes seals plaintext to pub (*rsa.PublicKey, *ecdsa.PublicKey or
// *ecdh.PublicKey).
func Bytes(pub crypto.PublicKey, plaintext []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pub)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Open returns the plaintext of what Bytes sealed, or an error matching
// ErrWrongKey when it was sealed to another key or altered.
func Open(priv crypto.PrivateKey, sealed []byte) ([]byte, error) {
	r, err := newReader(bytes.NewReader(sealed), priv, len(sealed))
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	return plain, nil
}
