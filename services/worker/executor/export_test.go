package executor

import (
	"github.com/gantryhq/gantry/services/platform/seal"

	"crypto"
	"io"
)

// OpenSealed decrypts a sealed stream without unpacking it, so that tests
// can compare the plaintext with what was stored.
func OpenSealed(r io.Reader, key crypto.PrivateKey) (io.Reader, error) { return seal.NewReader(r, key) }
