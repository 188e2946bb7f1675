package keyring

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/workerpool"
)

// Pool CA parameters.
const (
	// CAKeyName names the CA's key (and certificate) in the key store.
	CAKeyName = "pool-ca"
	// CACommonName is the subject of the CA certificate.
	CACommonName = "Gantry worker pool CA"
	// caValidYears and poolCertValidYears are the certificates' lifetimes.
	caValidYears       = 10
	poolCertValidYears = 2
	// backdate starts certificates' validity a little before now, so that
	// a verifier whose clock is slightly behind the signer's accepts them.
	backdate = 5 * time.Minute
)

// CA is the worker pool certificate authority: it signs the certificates of
// private pools from their users' CSRs, and verifies them when a launcher
// presents one.
type CA struct {
	key     crypto.Signer
	cert    *x509.Certificate
	certPEM []byte
}

// LoadOrCreateCA returns the pool CA from keys, creating its ECDSA P-256 key
// and self-signed certificate (valid for 10 years from now) on first start.
// Concurrent first starts agree on one CA.
func LoadOrCreateCA(ctx context.Context, keys *KeyStore, now time.Time) (*CA, error) {
	key, err := keys.LoadOrCreate(ctx, CAKeyName, func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if err != nil {
		return nil, fmt.Errorf("pool CA: %w", err)
	}
	certPEM, err := keys.LoadOrCreateCertificate(ctx, CAKeyName, func() ([]byte, error) {
		return selfSign(key, now)
	})
	if err != nil {
		return nil, fmt.Errorf("pool CA: %w", err)
	}
	block, err := pemBlock(certPEM, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("pool CA: stored certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pool CA: stored certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("pool CA: the stored certificate is not for the stored key")
	}
	if !cert.IsCA {
		return nil, errors.New("pool CA: the stored certificate is not a CA certificate")
	}
	return &CA{key: key, cert: cert, certPEM: certPEM}, nil
}

// selfSign makes the CA certificate for key.
func selfSign(key crypto.Signer, now time.Time) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CACommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caValidYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs pool certificates only, never another CA
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CertificatePEM returns the CA certificate, for launchers and NATS to trust.
func (ca *CA) CertificatePEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Sign issues the client certificate of pool poolID for the key in csr:
// subject CN = poolID, valid for 2 years from now (never past the CA's own
// expiry), with a random serial. It returns the PEM certificate and the
// facts the worker pool domain records and judges.
func (ca *CA) Sign(csr *CSRInfo, poolID string, now time.Time) ([]byte, workerpool.Certificate, error) {
	if csr == nil || csr.publicKey == nil {
		return nil, workerpool.Certificate{}, errors.New("pool CA: sign: the CSR was not parsed by ParseCSR")
	}
	if err := ids.WorkerPool.Validate("pool_id", poolID); err != nil {
		return nil, workerpool.Certificate{}, fmt.Errorf("pool CA: sign: %w", err)
	}
	if now.IsZero() {
		return nil, workerpool.Certificate{}, errors.New("pool CA: sign: no signing time")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, workerpool.Certificate{}, fmt.Errorf("pool CA: sign: %w", err)
	}
	notAfter := now.AddDate(poolCertValidYears, 0, 0)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	// The server encrypts run secrets and saved workspaces to the pool's
	// key, hence key encipherment (RSA) or key agreement (ECDSA) as well.
	usage := x509.KeyUsageDigitalSignature
	switch csr.KeyAlgorithm {
	case workerpool.RSA:
		usage |= x509.KeyUsageKeyEncipherment
	case workerpool.ECDSA:
		usage |= x509.KeyUsageKeyAgreement
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: poolID},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.publicKey, ca.key)
	if err != nil {
		return nil, workerpool.Certificate{}, fmt.Errorf("pool CA: sign certificate for %s: %w", poolID, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return certPEM, workerpool.Certificate{
		PEM:          string(certPEM),
		Serial:       serial.Text(16),
		Fingerprint:  Fingerprint(der),
		KeyAlgorithm: csr.KeyAlgorithm,
		KeyBits:      csr.KeyBits,
	}, nil
}

// Verify checks that certPEM is a pool client certificate this CA issued
// and that it is valid at now, and returns it. The pool id is its
// Subject.CommonName; compare Fingerprint(cert.Raw) with the pool's current
// certificate to refuse one replaced by a reset.
func (ca *CA) Verify(certPEM []byte, now time.Time) (*x509.Certificate, error) {
	block, err := pemBlock(certPEM, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("pool CA: verify: %w", err)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pool CA: verify: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("pool CA: verify: %w", err)
	}
	if err := ids.WorkerPool.Validate("certificate.subject", cert.Subject.CommonName); err != nil {
		return nil, fmt.Errorf("pool CA: verify: %w", err)
	}
	return cert, nil
}

// Fingerprint returns the hex SHA-256 of a DER certificate, as
// workerpool.Certificate records it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// randomSerial returns a random positive serial of at most 127 bits, within
// the 20 octets RFC 5280 allows.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("random serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// pemBlock returns the single PEM block of type typ in data.
func pemBlock(data []byte, typ string) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != typ || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("not a single PEM %s", typ)
	}
	return block, nil
}
