package executor

import (
	"crypto"
	"io"
)

// OpenSealed decrypts a sealed stream without unpacking it, so that tests
// can compare the plaintext with what was stored.
func OpenSealed(r io.Reader, key crypto.PrivateKey) (io.Reader, error) { return newOpenReader(r, key) }
