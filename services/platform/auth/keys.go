package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// The algorithms session tokens may be signed with: one per kind of key
// Gantry accepts. Nothing else verifies, whatever a token's header says.
const (
	AlgEdDSA = "EdDSA" // Ed25519 keys
	AlgES256 = "ES256" // ECDSA keys on P-256
)

var b64 = base64.RawURLEncoding

// verifyKey is a public key session tokens are checked with.
type verifyKey struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	pub    crypto.PublicKey
}

// KeySet is the key material of session tokens: the private key new tokens
// are signed with, and every public key a token may be signed by (the
// signing key's own among them). Keeping the keys of a rotation in one set
// is what lets a new key sign while tokens of the old one still verify.
type KeySet struct {
	signer crypto.Signer
	sign   verifyKey
	verify map[string]verifyKey // by kid
	algs   []string             // the algorithms of the verify keys, sorted
}

// NewKeySet returns the set that signs with signer and verifies with its
// public key and the keys in also. Keys are Ed25519 or ECDSA on P-256.
func NewKeySet(signer crypto.Signer, also ...crypto.PublicKey) (*KeySet, error) {
	if signer == nil {
		return nil, errors.New("signing key: none given")
	}
	sign, err := newVerifyKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	ks := &KeySet{signer: signer, sign: sign, verify: map[string]verifyKey{sign.kid: sign}}
	for i, pub := range also {
		k, err := newVerifyKey(pub)
		if err != nil {
			return nil, fmt.Errorf("verify key %d: %w", i+1, err)
		}
		ks.verify[k.kid] = k
	}
	for _, k := range ks.verify {
		if !slices.Contains(ks.algs, k.alg) {
			ks.algs = append(ks.algs, k.alg)
		}
	}
	slices.Sort(ks.algs)
	return ks, nil
}

// ParseKeySet reads the signing key from signingPEM (one PKCS#8 "PRIVATE
// KEY" or SEC 1 "EC PRIVATE KEY" block) and the extra verify keys from
// verifyPEM (any number of "PUBLIC KEY" blocks, or private key blocks whose
// public keys are taken). verifyPEM may be empty.
func ParseKeySet(signingPEM, verifyPEM []byte) (*KeySet, error) {
	blocks, err := pemBlocks(signingPEM)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if len(blocks) != 1 {
		return nil, fmt.Errorf("signing key: want one PEM private key, found %d PEM blocks", len(blocks))
	}
	signer, err := parsePrivateKey(blocks[0])
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if len(strings.TrimSpace(string(verifyPEM))) == 0 {
		return NewKeySet(signer)
	}
	blocks, err = pemBlocks(verifyPEM)
	if err != nil {
		return nil, fmt.Errorf("verify keys: %w", err)
	}
	var pubs []crypto.PublicKey
	for i, b := range blocks {
		var pub crypto.PublicKey
		if b.Type == "PUBLIC KEY" {
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		} else {
			var k crypto.Signer
			if k, err = parsePrivateKey(b); err == nil {
				pub = k.Public()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("verify keys: PEM block %d (%s): %w", i+1, b.Type, err)
		}
		pubs = append(pubs, pub)
	}
	return NewKeySet(signer, pubs...)
}

// SigningKeyID returns the kid of the key new tokens are signed with.
func (ks *KeySet) SigningKeyID() string { return ks.sign.kid }

// KeyIDs returns the kids of every key a token may be signed by, sorted.
func (ks *KeySet) KeyIDs() []string {
	out := make([]string, 0, len(ks.verify))
	for kid := range ks.verify {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}

// Algorithms returns the algorithms tokens may be signed with: those of
// the keys in the set, and nothing else.
func (ks *KeySet) Algorithms() []string { return slices.Clone(ks.algs) }

// pemBlocks decodes every PEM block of data; text outside the blocks other
// than white space is an error, so that a truncated file is not half read.
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var out []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		out = append(out, b)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("not PEM: text outside PEM blocks (a truncated or mangled file?)")
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM block")
	}
	return out, nil
}

// parsePrivateKey reads a PKCS#8 or SEC 1 private key block.
func parsePrivateKey(b *pem.Block) (crypto.Signer, error) {
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key: want PRIVATE KEY (PKCS#8) or EC PRIVATE KEY", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse the private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	if _, err := newVerifyKey(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// newVerifyKey describes pub, refusing every kind of key but Ed25519 and
// ECDSA on P-256.
func newVerifyKey(pub crypto.PublicKey) (verifyKey, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return verifyKey{}, errors.New("malformed Ed25519 public key")
		}
		jwk := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(k) + `"}`
		return verifyKey{kid: thumbprint(jwk), alg: AlgEdDSA, method: jwt.SigningMethodEdDSA, pub: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return verifyKey{}, fmt.Errorf("ECDSA keys must be on P-256, not %s", k.Curve.Params().Name)
		}
		point, err := k.ECDH()
		if err != nil {
			return verifyKey{}, fmt.Errorf("ECDSA key: %w", err)
		}
		raw := point.Bytes() // 0x04 || X || Y, 32 bytes each
		jwk := `{"crv":"P-256","kty":"EC","x":"` + b64.EncodeToString(raw[1:33]) + `","y":"` + b64.EncodeToString(raw[33:]) + `"}`
		return verifyKey{kid: thumbprint(jwk), alg: AlgES256, method: jwt.SigningMethodES256, pub: k}, nil
	}
	return verifyKey{}, fmt.Errorf("a %T is not accepted: use an Ed25519 key or an ECDSA key on P-256", pub)
}

// thumbprint returns the RFC 7638 JWK thumbprint of a canonical JWK: the
// kid of a key, stable for the key and different for any other.
func thumbprint(canonicalJWK string) string {
	sum := sha256.Sum256([]byte(canonicalJWK))
	return b64.EncodeToString(sum[:])
}
