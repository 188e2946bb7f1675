// Package keyring holds Gantry's server-side key material and what is made
// from it: the secrets keeper that encrypts sensitive fields, state files
// and run logs at rest (a KMS, the operator's RSA key, or a local key; held
// to the installation's first choice by CheckKeeper), the
// store of the server's own signing keys (encrypted by the keeper), the
// worker pool CA that signs pool certificates from users' CSRs, and pool
// secrets (the pool tokens launchers start with are protocol.PoolToken), and
// the keys `gantry dev` keeps in its data directory.
//
// The package shares its name with the standard library's crypto; importers
// that need both give this one a name, e.g. gcrypto.
package keyring
