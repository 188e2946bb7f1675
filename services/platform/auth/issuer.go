package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// SigningKeyName names the API token signing key in the key store.
const SigningKeyName = "api-signing"

// MaxSubjectLength bounds a token's subject.
const MaxSubjectLength = 200

// KeyLoader is what the issuer needs of the server key store
// (crypto.KeyStore): the signing key, made on first start.
type KeyLoader interface {
	LoadOrCreate(ctx context.Context, name string, generate func() (crypto.Signer, error)) (crypto.Signer, error)
}

// Verifier checks a bearer token. An error wrapping ErrInvalidToken refuses
// the token; any other error means it could not be checked.
type Verifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

// Issuer issues and verifies API tokens: JWTs signed with the Ed25519 key
// SigningKeyName, which the key store keeps encrypted. Every server replica
// loads the same key, so a token from one is accepted by all.
type Issuer struct {
	key ed25519.PrivateKey
	pub ed25519.PublicKey
	kid string
	now func() time.Time
}

// NewIssuer loads (or, on first start, creates) the signing key from keys.
// now is the clock tokens are issued and checked by.
func NewIssuer(ctx context.Context, keys KeyLoader, now func() time.Time) (*Issuer, error) {
	if now == nil {
		return nil, errors.New("token issuer: no clock")
	}
	signer, err := keys.LoadOrCreate(ctx, SigningKeyName, func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	key, ok := signer.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token issuer: key %s is a %T, not Ed25519", SigningKeyName, signer)
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Issuer{key: key, pub: pub, kid: keyID(pub), now: now}, nil
}

// KeyID returns the id (kid) of the signing key, an RFC 7638 thumbprint.
func (i *Issuer) KeyID() string { return i.kid }

// PublicKey returns the key tokens are verified with.
func (i *Issuer) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), i.pub...) }

// Issue returns a token for subject with role (RoleAdmin or RoleUser) that
// expires after ttl, or never when ttl is 0 (API keys, the dev admin).
func (i *Issuer) Issue(ctx context.Context, subject, role string, ttl time.Duration) (string, error) {
	var problems []string
	switch {
	case strings.TrimSpace(subject) == "":
		problems = append(problems, "subject must not be empty")
	case !utf8.ValidString(subject) || strings.ContainsFunc(subject, unicode.IsControl) || utf8.RuneCountInString(subject) > MaxSubjectLength:
		problems = append(problems, fmt.Sprintf("subject must be at most %d characters of UTF-8 text without control characters", MaxSubjectLength))
	}
	if role != RoleAdmin && role != RoleUser {
		problems = append(problems, fmt.Sprintf("role %q is not %s or %s", role, RoleAdmin, RoleUser))
	}
	if ttl < 0 {
		problems = append(problems, "ttl must not be negative")
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("issue token: %s", strings.Join(problems, "; "))
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("issue token: id: %w", err)
	}
	now := i.now()
	c := jwtClaims{
		Iss: tokenIssuer, Sub: subject, Role: role, Jti: "tok_" + hex.EncodeToString(jti[:]),
		Iat: now.Unix(), Nbf: ptr(now.Unix()),
	}
	if ttl > 0 {
		c.Exp = ptr(now.Add(ttl).Unix())
	}
	token, err := signJWT(i.key, i.kid, c)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return token, nil
}

// Verify checks token (signature, algorithm, key id, issuer, validity
// period) and returns who it belongs to. Every refusal wraps
// ErrInvalidToken with a reason fit for a debug log; none quotes the token.
func (i *Issuer) Verify(ctx context.Context, token string) (Principal, error) {
	c, err := verifyJWT(token, i.pub, i.kid, i.now())
	if err != nil {
		return Principal{}, err
	}
	switch {
	case c.Sub == "":
		return Principal{}, refuse("no subject")
	case c.Role != RoleAdmin && c.Role != RoleUser:
		return Principal{}, refuse("unknown role %q", c.Role)
	case c.Jti == "":
		return Principal{}, refuse("no token id")
	}
	return Principal{Subject: c.Sub, Role: c.Role, KeyID: c.Jti}, nil
}

func ptr[T any](v T) *T { return &v }
