package workerpool

import (
	"strings"
	"unicode"

	"github.com/gantryhq/gantry/domain"
)

// KeyAlgorithm is the public key algorithm of a pool's certificate.
type KeyAlgorithm string

// Accepted key algorithms.
const (
	RSA   KeyAlgorithm = "RSA"
	ECDSA KeyAlgorithm = "ECDSA"
)

// MinRSABits is the smallest RSA key a pool may use.
const MinRSABits = 2048

// Certificate holds the facts about a pool's certificate, parsed from the
// CSR and signed outside the domain (parsing and signing need crypto and
// randomness; the domain only judges the result).
type Certificate struct {
	PEM          string       `json:"pem"`
	Serial       string       `json:"serial"`
	Fingerprint  string       `json:"fingerprint"` // hex SHA-256 of the DER certificate
	KeyAlgorithm KeyAlgorithm `json:"key_algorithm"`
	KeyBits      int          `json:"key_bits"` // RSA modulus size, or the ECDSA curve size (256, 384, 521)
}

// normalize validates c and returns it with the fingerprint in lower case.
func (c Certificate) normalize(p *domain.Problems) Certificate {
	if !strings.Contains(c.PEM, "-----BEGIN CERTIFICATE-----") || !strings.Contains(c.PEM, "-----END CERTIFICATE-----") {
		p.Add("certificate.pem", "must be a PEM-encoded certificate")
	}
	switch {
	case c.Serial == "":
		p.Add("certificate.serial", "must not be empty")
	case len(c.Serial) > 128 || strings.ContainsFunc(c.Serial, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		p.Add("certificate.serial", "must be at most 128 characters without spaces")
	}
	c.Fingerprint = strings.ToLower(c.Fingerprint)
	if len(c.Fingerprint) != 64 || strings.ContainsFunc(c.Fingerprint, func(r rune) bool { return !strings.ContainsRune("0123456789abcdef", r) }) {
		p.Add("certificate.fingerprint", "must be a hex SHA-256 fingerprint (64 characters)")
	}
	switch c.KeyAlgorithm {
	case RSA:
		if c.KeyBits < MinRSABits {
			p.Addf("certificate.key_bits", "an RSA key must have at least %d bits, not %d", MinRSABits, c.KeyBits)
		}
	case ECDSA:
		if c.KeyBits != 256 && c.KeyBits != 384 && c.KeyBits != 521 {
			p.Addf("certificate.key_bits", "an ECDSA key must use P-256, P-384 or P-521, not a %d-bit curve", c.KeyBits)
		}
	default:
		p.Addf("certificate.key_algorithm", "%q keys are not accepted: use RSA (at least %d bits) or ECDSA (P-256, P-384, P-521)", c.KeyAlgorithm, MinRSABits)
	}
	return c
}
