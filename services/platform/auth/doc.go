// Package auth authenticates API callers: it issues and verifies Gantry's
// API tokens (JWTs signed with an Ed25519 key from the server key store),
// checks them on every Connect procedure and plain HTTP endpoint, and
// bootstraps the admin credentials `gantry dev` hands to the CLI.
package auth
