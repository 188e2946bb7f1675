package executor

import (
	"crypto"
	"io"

	"github.com/gantryhq/gantry/services/platform/seal"
)

// OpenSealed decrypts a sealed stream without unpacking it, so that tests
// can compare the plaintext with what was stored.
func OpenSealed(r io.Reader, key crypto.PrivateKey) (io.Reader, error) { return seal.NewReader(r, key) }

// WarmReady reports whether the Docker executor holds a container started in
// advance, ready for the next run: the engine shows such a container running
// a moment before the executor has taken it over.
func (e *Executor) WarmReady() bool {
	b, ok := e.backend.(*dockerBackend)
	if !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.warm != nil
}
