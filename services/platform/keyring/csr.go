package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/workerpool"
)

// MaxCSRSize bounds an uploaded CSR; real ones are a few KiB.
const MaxCSRSize = 64 << 10

// CSRInfo is a certificate signing request that parsed and whose signature
// verified, with the facts about its key the worker pool domain judges. Only
// ParseCSR makes one; CA.Sign signs nothing else.
type CSRInfo struct {
	// KeyAlgorithm is workerpool.RSA, workerpool.ECDSA, or the name of
	// another algorithm (such as "Ed25519") that the domain refuses.
	KeyAlgorithm workerpool.KeyAlgorithm
	// KeyBits is the RSA modulus size, the ECDSA curve size (256, 384,
	// 521), or 256 for Ed25519.
	KeyBits int
	// Curve names the ECDSA curve ("P-256", "P-384", "P-521"); empty for
	// other algorithms.
	Curve string

	publicKey crypto.PublicKey
}

// ParseCSR parses a PEM "CERTIFICATE REQUEST" such as `openssl req -new`
// writes, checks that it is signed by its own key, and reports that key's
// algorithm and size. Whether they are strong enough is for the domain to
// decide; ParseCSR refuses only what it cannot describe. Every refusal is a
// *domain.ValidationError naming the field "csr".
func ParseCSR(pemBytes []byte) (*CSRInfo, error) {
	if len(pemBytes) > MaxCSRSize {
		return nil, csrProblem("must be at most %d KiB", MaxCSRSize>>10)
	}
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, csrProblem("must be a PEM-encoded certificate request (-----BEGIN CERTIFICATE REQUEST-----), as `openssl req -new` writes it")
	}
	switch block.Type {
	case "CERTIFICATE REQUEST":
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, csrProblem("is a private key, not a certificate request: upload the CSR and keep the key to yourself")
	default:
		return nil, csrProblem("is a PEM %q block, not a CERTIFICATE REQUEST", block.Type)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, csrProblem("must hold exactly one certificate request")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, csrProblem("is not a valid certificate request: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, csrProblem("signature does not verify: the request is damaged or was not signed by its own key")
	}
	info := &CSRInfo{KeyAlgorithm: workerpool.KeyAlgorithm(req.PublicKeyAlgorithm.String()), publicKey: req.PublicKey}
	switch pub := req.PublicKey.(type) {
	case *rsa.PublicKey:
		info.KeyBits = pub.N.BitLen()
	case *ecdsa.PublicKey:
		params := pub.Curve.Params()
		info.KeyBits, info.Curve = params.BitSize, params.Name
	case ed25519.PublicKey:
		info.KeyBits = 8 * len(pub)
	default:
		return nil, csrProblem("public key algorithm %s is not supported: use RSA or ECDSA", req.PublicKeyAlgorithm)
	}
	return info, nil
}

func csrProblem(format string, args ...any) error {
	return &domain.ValidationError{Field: "csr", Problem: fmt.Sprintf(format, args...)}
}
