package vcs

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// The headers deliveries are signed and described with.
const (
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	HeaderGitLabToken     = "X-Gitlab-Token"
	HeaderGitLabEvent     = "X-Gitlab-Event"
	HeaderGitLabEventUUID = "X-Gitlab-Event-UUID"
	HeaderIdempotencyKey  = "Idempotency-Key"
)

// VerifyGitHub reports whether signature (the X-Hub-Signature-256 header,
// "sha256=<hex>") is the HMAC-SHA256 of body under secret. The comparison
// takes the same time wherever the MACs differ.
func VerifyGitHub(secret, body []byte, signature string) bool {
	hexMAC, ok := strings.CutPrefix(signature, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// SignGitHub returns the X-Hub-Signature-256 value of body under secret,
// as GitHub computes it (and as tests and the benchmark send it).
func SignGitHub(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyGitLab reports whether token (the X-Gitlab-Token header) is the
// secret, in constant time.
func VerifyGitLab(secret []byte, token string) bool {
	return len(secret) > 0 && subtle.ConstantTimeCompare(secret, []byte(token)) == 1
}
