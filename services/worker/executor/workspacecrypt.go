package executor

import (
	"github.com/gantryhq/gantry/services/platform/seal"

	"context"
	"crypto"
	"fmt"
	"io"
	"os"
)

// SaveWorkspace archives the tree under dir (tar and gzip; permission bits
// and symbolic links kept; sockets, pipes and devices left out) and writes
// it to w encrypted to the worker pool's public key (*rsa.PublicKey,
// *ecdsa.PublicKey or *ecdh.PublicKey), so that only workers holding the
// pool's private key can read it. See seal.go for the format.
func SaveWorkspace(ctx context.Context, dir string, poolPublicKey crypto.PublicKey, w io.Writer) error {
	sw, err := seal.NewWriter(w, poolPublicKey)
	if err != nil {
		return fmt.Errorf("save the workspace: %w", err)
	}
	if err := writeArchive(ctx, dir, sw); err != nil {
		return fmt.Errorf("save the workspace: %w", err)
	}
	if err := sw.Close(); err != nil {
		return fmt.Errorf("save the workspace: %w", err)
	}
	return nil
}

// RestoreWorkspace decrypts a workspace SaveWorkspace wrote, with the pool's
// private key, and unpacks it into destDir, which must be empty or not
// exist. It refuses entries with absolute paths or that lead out of
// destDir, and fails with ErrWrongKey when the workspace was encrypted to
// another key, altered or truncated. On error destDir may hold part of the
// workspace; the caller removes it.
func RestoreWorkspace(ctx context.Context, ciphertext io.Reader, poolPrivateKey crypto.PrivateKey, destDir string) error {
	if err := os.MkdirAll(destDir, 0o700); err != nil {
		return fmt.Errorf("restore the workspace: %w", err)
	}
	entries, err := os.ReadDir(destDir)
	if err != nil {
		return fmt.Errorf("restore the workspace: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("restore the workspace: %s is not empty", destDir)
	}
	or, err := seal.NewReader(ciphertext, poolPrivateKey)
	if err != nil {
		return fmt.Errorf("restore the workspace: %w", err)
	}
	if err := extractArchive(ctx, or, destDir); err != nil {
		return fmt.Errorf("restore the workspace: %w", err)
	}
	// The archive ended; the encrypted stream must end with it, authenticated.
	if n, err := io.Copy(io.Discard, or); err != nil || n > 0 {
		return fmt.Errorf("restore the workspace: %w", seal.ErrWrongKey)
	}
	return nil
}

// ErrWrongKey is matched by the error of RestoreWorkspace when the workspace
// was encrypted to another key, altered or truncated.
var ErrWrongKey = seal.ErrWrongKey
