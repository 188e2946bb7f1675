package auth

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/gantryhq/gantry/domain/ids"
)

// ErrInvalidToken is wrapped by every refusal of a session token. The
// wrapped reason is for logs at debug level; clients only learn that the
// token was refused.
var ErrInvalidToken = errors.New("invalid token")

const (
	// tokenIssuer is the iss of every session token; no other is accepted.
	tokenIssuer = "gantry"
	// maxTokenLength bounds the work spent on a token before its signature
	// is checked; session tokens are a few hundred bytes.
	maxTokenLength = 4096
	// clockSkew tolerates server replicas whose clocks disagree a little.
	clockSkew = 30 * time.Second
	// sessionIDPrefix starts the id (jti) of every session token.
	sessionIDPrefix = "ses_"
)

// Claims are what a verified session token says.
type Claims struct {
	// KeyID is the API key the session was opened with (the token's sub).
	KeyID string
	// SessionID is the token's own id (jti), for audit.
	SessionID string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// sessionClaims is the JWT payload of a session token.
type sessionClaims struct {
	jwt.RegisteredClaims
}

// Validate implements jwt.ClaimsValidator: the checks golang-jwt's own
// validator does not make.
func (c sessionClaims) Validate() error {
	var problems []string
	if ids.APIKey.Validate("sub", c.Subject) != nil {
		problems = append(problems, "the subject is not an API key id")
	}
	if !strings.HasPrefix(c.ID, sessionIDPrefix) {
		problems = append(problems, "no session token id")
	}
	if c.IssuedAt == nil {
		problems = append(problems, "no issue time")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Issuer signs and verifies session tokens: JWTs signed by the key set's
// signing key, verified by github.com/golang-jwt/jwt/v5 against exactly the
// algorithms of the set's keys. Every server replica given the same keys
// accepts the tokens of the others.
type Issuer struct {
	keys   *KeySet
	now    func() time.Time
	parser *jwt.Parser
}

// NewIssuer returns an issuer of keys; now is the clock tokens are issued
// and checked by.
func NewIssuer(keys *KeySet, now func() time.Time) (*Issuer, error) {
	if keys == nil {
		return nil, errors.New("token issuer: no keys")
	}
	if now == nil {
		return nil, errors.New("token issuer: no clock")
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(keys.Algorithms()),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return &Issuer{keys: keys, now: now, parser: parser}, nil
}

// Keys returns the issuer's key set.
func (i *Issuer) Keys() *KeySet { return i.keys }

// Issue returns a session token for the API key keyID that expires after
// ttl, and what it says.
func (i *Issuer) Issue(keyID string, ttl time.Duration) (string, Claims, error) {
	if err := ids.APIKey.Validate("key_id", keyID); err != nil {
		return "", Claims{}, fmt.Errorf("issue a session token: %w", err)
	}
	if ttl <= 0 {
		return "", Claims{}, fmt.Errorf("issue a session token: ttl %s must be positive", ttl)
	}
	u, err := uuid.NewV7()
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue a session token: id: %w", err)
	}
	// Whole seconds: that is what the token can hold.
	now := i.now().Truncate(time.Second)
	c := Claims{KeyID: keyID, SessionID: sessionIDPrefix + hex.EncodeToString(u[:]), IssuedAt: now, ExpiresAt: now.Add(ttl)}
	t := jwt.NewWithClaims(i.keys.sign.method, sessionClaims{jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: c.KeyID, ID: c.SessionID,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
	}})
	t.Header["kid"] = i.keys.sign.kid
	token, err := t.SignedString(i.keys.signer)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue a session token: %w", err)
	}
	return token, c, nil
}

// Verify checks token (form, algorithm, key id, signature, issuer,
// validity period) and returns its claims. It does not know whether the
// API key is still live: Sessions.Verify checks that. Every refusal wraps
// ErrInvalidToken with a reason fit for a debug log; none quotes the token.
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(token) > maxTokenLength {
		return Claims{}, refuse("longer than %d bytes", maxTokenLength)
	}
	if strings.Count(token, ".") != 2 {
		return Claims{}, refuse("not three dot-separated parts")
	}
	var c sessionClaims
	t, err := i.parser.ParseWithClaims(token, &c, i.key)
	if err != nil {
		if t != nil && t.Header != nil {
			if alg, _ := t.Header["alg"].(string); !slices.Contains(i.keys.algs, alg) {
				return Claims{}, refuse("algorithm %q is not accepted (only %s)", alg, strings.Join(i.keys.algs, ", "))
			}
		}
		return Claims{}, refuse("%v", err)
	}
	return Claims{KeyID: c.Subject, SessionID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time}, nil
}

// key is the jwt.Keyfunc: it picks the verify key the header's kid names
// and requires the header's algorithm to be that key's, so that no token
// is checked with a key of another kind.
func (i *Issuer) key(t *jwt.Token) (any, error) {
	if typ, ok := t.Header["typ"]; ok && typ != "JWT" {
		return nil, fmt.Errorf("type %v is not JWT", typ)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("critical header extensions are not understood")
	}
	kid, _ := t.Header["kid"].(string)
	k, ok := i.keys.verify[kid]
	if !ok {
		return nil, fmt.Errorf("signed by unknown key %q", kid)
	}
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("algorithm %s does not match key %s (%s)", t.Method.Alg(), kid, k.alg)
	}
	return k.pub, nil
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}
