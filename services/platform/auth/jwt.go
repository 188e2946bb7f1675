package auth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidToken is wrapped by every refusal of a token by Verify. The
// wrapped reason is for logs at debug level; clients only learn that the
// token was refused.
var ErrInvalidToken = errors.New("invalid token")

// The JWT profile Gantry issues and accepts; nothing else verifies. Writing
// it out (rather than using a general JWT library) keeps the accepted set to
// exactly one algorithm, so "none" and HMAC-with-the-public-key confusions
// have no code path to go down.
const (
	tokenIssuer = "gantry"
	tokenAlg    = "EdDSA"
	tokenType   = "JWT"
	// maxTokenLength bounds the work spent on a token before its signature
	// is checked; Gantry's tokens are a few hundred bytes.
	maxTokenLength = 4096
	// clockSkew tolerates server replicas whose clocks disagree a little:
	// a token issued by one is accepted by another whose clock is behind.
	clockSkew = 30 * time.Second
)

var b64 = base64.RawURLEncoding

// jwtHeader is the JOSE header of a token.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ,omitempty"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

// jwtClaims are the claims of a token. Times are seconds since the epoch.
type jwtClaims struct {
	Iss  string `json:"iss"`
	Sub  string `json:"sub"`
	Role string `json:"role"`
	Jti  string `json:"jti"`
	Iat  int64  `json:"iat"`
	Nbf  *int64 `json:"nbf,omitempty"`
	Exp  *int64 `json:"exp,omitempty"`
}

// signJWT returns the compact serialisation of claims signed by key.
func signJWT(key ed25519.PrivateKey, kid string, c jwtClaims) (string, error) {
	h, err := json.Marshal(jwtHeader{Alg: tokenAlg, Typ: tokenType, Kid: kid})
	if err != nil {
		return "", fmt.Errorf("encode token header: %w", err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	signingInput := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return signingInput + "." + b64.EncodeToString(ed25519.Sign(key, []byte(signingInput))), nil
}

// verifyJWT checks token's form, header, signature and time claims against
// pub, kid and now, and returns its claims. Every error wraps ErrInvalidToken
// and never quotes the token.
func verifyJWT(token string, pub ed25519.PublicKey, kid string, now time.Time) (jwtClaims, error) {
	if len(token) > maxTokenLength {
		return jwtClaims{}, refuse("longer than %d bytes", maxTokenLength)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtClaims{}, refuse("not three dot-separated parts")
	}
	var h jwtHeader
	if err := decodePart(parts[0], &h); err != nil {
		return jwtClaims{}, refuse("header: %v", err)
	}
	switch {
	case h.Alg != tokenAlg:
		return jwtClaims{}, refuse("algorithm %q is not %s", h.Alg, tokenAlg)
	case h.Typ != "" && h.Typ != tokenType:
		return jwtClaims{}, refuse("type %q is not %s", h.Typ, tokenType)
	case h.Crit != nil:
		return jwtClaims{}, refuse("critical header extensions are not understood")
	case h.Kid != kid:
		return jwtClaims{}, refuse("signed by unknown key %q", h.Kid)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return jwtClaims{}, refuse("malformed signature")
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return jwtClaims{}, refuse("bad signature")
	}
	var c jwtClaims
	if err := decodePart(parts[1], &c); err != nil {
		return jwtClaims{}, refuse("claims: %v", err)
	}
	if c.Iss != tokenIssuer {
		return jwtClaims{}, refuse("issuer %q is not %s", c.Iss, tokenIssuer)
	}
	if c.Nbf != nil && now.Add(clockSkew).Before(time.Unix(*c.Nbf, 0)) {
		return jwtClaims{}, refuse("not valid before %s", time.Unix(*c.Nbf, 0).UTC().Format(time.RFC3339))
	}
	if c.Exp != nil && !now.Before(time.Unix(*c.Exp, 0)) {
		return jwtClaims{}, refuse("expired at %s", time.Unix(*c.Exp, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

// decodePart decodes one base64url JSON part of a token into v.
func decodePart(part string, v any) error {
	raw, err := b64.DecodeString(part)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// json's syntax errors quote the input; the kind of problem is enough.
		return errors.New("not the expected JSON object")
	}
	return nil
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// keyID returns the RFC 7638 JWK thumbprint of an Ed25519 public key, the
// token header's kid: stable for a key, and different for another.
func keyID(pub ed25519.PublicKey) string {
	jwk := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(jwk))
	return b64.EncodeToString(sum[:])
}
