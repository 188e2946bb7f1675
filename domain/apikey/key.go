package apikey

import (
	"strings"

	"github.com/gantryhq/gantry/domain/ids"
)

// SecretLength is the length of a key's secret: 32 random bytes in
// lower-case hex.
const SecretLength = 64

// FormatKey returns the key a user holds: the key id, "_", and the secret
// ("ak_0192…_9f3c…"). Carrying the id lets the server find the one key to
// compare the secret with, and lets secret scanners recognise a leaked key
// by its prefix.
func FormatKey(keyID, secret string) string { return keyID + "_" + secret }

// ParseKey splits a key made by FormatKey into its id and secret. ok is false
// when key does not have that form; nothing is looked up.
func ParseKey(key string) (keyID, secret string, ok bool) {
	i := strings.LastIndexByte(key, '_')
	if i < 0 {
		return "", "", false
	}
	keyID, secret = key[:i], key[i+1:]
	if ids.APIKey.Validate("key", keyID) != nil || !isHex64(secret) {
		return "", "", false
	}
	return keyID, secret, true
}

// LooksLikeKey reports whether s has the form of a key (not whether it is
// one), so that a client can tell a key from a session token.
func LooksLikeKey(s string) bool {
	_, _, ok := ParseKey(s)
	return ok
}

// isHex64 reports whether s is 64 lower-case hex digits: a secret, or a
// SHA-256 in hex.
func isHex64(s string) bool {
	if len(s) != SecretLength {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
