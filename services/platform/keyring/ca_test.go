package keyring_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/testenv"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func bigOne() *big.Int { return big.NewInt(1) }

// newCA returns the pool CA of a fresh database.
func newCA(t testing.TB) *keyring.CA {
	t.Helper()
	store := keyring.NewKeyStore(testenv.MigratedPostgres(t), openKeeper(t, keeperURL(1)))
	ca, err := keyring.LoadOrCreateCA(context.Background(), store, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseCert(t testing.TB, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", pemBytes)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCACertificate(t *testing.T) {
	t.Parallel()
	c := parseCert(t, newCA(t).CertificatePEM())
	if !c.IsCA || c.Subject.CommonName != keyring.CACommonName || c.Issuer.CommonName != keyring.CACommonName {
		t.Errorf("CA certificate: IsCA %v, subject %q, issuer %q", c.IsCA, c.Subject, c.Issuer)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if !c.NotAfter.Equal(t0.AddDate(10, 0, 0)) || c.NotBefore.After(t0) {
		t.Errorf("CA valid %s to %s", c.NotBefore, c.NotAfter)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA certificate is not self-signed: %v", err)
	}
}

func TestCAConcurrentFirstStartsAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	keeper := openKeeper(t, keeperURL(1))
	const n = 4
	cas := make([]*keyring.CA, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cas[i], errs[i] = keyring.LoadOrCreateCA(ctx, keyring.NewKeyStore(pool, keeper), t0.Add(time.Duration(i)*time.Second))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if string(cas[i].CertificatePEM()) != string(cas[0].CertificatePEM()) {
			t.Fatalf("start %d has another CA certificate than start 0", i)
		}
	}
	// A restart a year later keeps the CA.
	later, err := keyring.LoadOrCreateCA(ctx, keyring.NewKeyStore(pool, keeper), t0.AddDate(1, 0, 0))
	if err != nil || string(later.CertificatePEM()) != string(cas[0].CertificatePEM()) {
		t.Fatalf("restart: %v", err)
	}
}

func TestCASignsPoolCertificates(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	keys := testKeys()
	for _, name := range []string{"rsa4096", "p256"} {
		info, err := keyring.ParseCSR(csrPEM(t, keys[name]))
		if err != nil {
			t.Fatal(err)
		}
		certPEM, facts, err := ca.Sign(info, "wp_01JTEST", t0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := parseCert(t, certPEM)
		if c.Subject.CommonName != "wp_01JTEST" {
			t.Errorf("%s: subject %q", name, c.Subject)
		}
		if !c.NotAfter.Equal(t0.AddDate(2, 0, 0)) || c.NotBefore.After(t0) {
			t.Errorf("%s: valid %s to %s", name, c.NotBefore, c.NotAfter)
		}
		if c.IsCA || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("%s: IsCA %v, ext key usage %v", name, c.IsCA, c.ExtKeyUsage)
		}
		if !c.PublicKey.(publicKey).Equal(keys[name].Public()) {
			t.Errorf("%s: certificate is not for the CSR's key", name)
		}
		sum := sha256.Sum256(c.Raw)
		if facts.PEM != string(certPEM) || facts.Serial != c.SerialNumber.Text(16) || facts.Fingerprint != hex.EncodeToString(sum[:]) ||
			facts.KeyAlgorithm != info.KeyAlgorithm || facts.KeyBits != info.KeyBits {
			t.Errorf("%s: facts %+v do not describe the certificate", name, facts)
		}

		// It chains to the CA, by the standard library's judgement and by Verify.
		roots := x509.NewCertPool()
		roots.AddCert(parseCert(t, ca.CertificatePEM()))
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: does not verify against the CA: %v", name, err)
		}
		got, err := ca.Verify(certPEM, t0.Add(time.Hour))
		if err != nil || got.Subject.CommonName != "wp_01JTEST" || keyring.Fingerprint(got.Raw) != facts.Fingerprint {
			t.Errorf("%s: Verify = %v, %v", name, got, err)
		}
		if _, err := ca.Verify(certPEM, t0.AddDate(2, 0, 1)); err == nil {
			t.Errorf("%s: Verify accepted an expired certificate", name)
		}

		// The domain accepts what it is given.
		if _, err := workerpool.Decide(workerpool.State{}, createPool(facts)); err != nil {
			t.Errorf("%s: the domain refuses the certificate: %v", name, err)
		}
	}

	// Two signatures of one CSR differ in serial.
	info, _ := keyring.ParseCSR(csrPEM(t, keys["p256"]))
	_, a, _ := ca.Sign(info, "wp_a", t0)
	_, b, _ := ca.Sign(info, "wp_a", t0)
	if a.Serial == b.Serial || a.Fingerprint == b.Fingerprint {
		t.Error("two certificates share a serial")
	}
}

func createPool(cert workerpool.Certificate) workerpool.Create {
	return workerpool.Create{PoolID: "wp_01JTEST", Name: "private", Certificate: cert, SecretHash: keyring.HashPoolSecret("s"), Actor: "user:alice", At: t0}
}

func TestDomainJudgesKeysTheCASigned(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	keys := testKeys()
	for name, field := range map[string]string{"rsa1024": "certificate.key_bits", "ed25519": "certificate.key_algorithm"} {
		info, err := keyring.ParseCSR(csrPEM(t, keys[name]))
		if err != nil {
			t.Fatal(err)
		}
		_, facts, err := ca.Sign(info, "wp_01JTEST", t0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = workerpool.Decide(workerpool.State{}, createPool(facts))
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("%s: domain says %v, want a problem with %s", name, err, field)
		}
	}
}

func TestCASignRefusals(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	info, err := keyring.ParseCSR(csrPEM(t, testKeys()["p256"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Sign(&keyring.CSRInfo{KeyAlgorithm: workerpool.ECDSA, KeyBits: 256}, "wp_a", t0); err == nil {
		t.Error("signed a CSRInfo that ParseCSR did not make")
	}
	if _, _, err := ca.Sign(info, "stk_a", t0); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("signed for a pool id that is not one: %v", err)
	}
	if _, _, err := ca.Sign(info, "wp_a", time.Time{}); err == nil {
		t.Error("signed without a time")
	}
	// Near the CA's end, a pool certificate does not outlive it.
	certPEM, _, err := ca.Sign(info, "wp_a", t0.AddDate(9, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := parseCert(t, certPEM).NotAfter, parseCert(t, ca.CertificatePEM()).NotAfter; !got.Equal(want) {
		t.Errorf("late certificate ends %s, CA ends %s", got, want)
	}
}

func TestCAVerifyRefusesForeignCertificates(t *testing.T) {
	t.Parallel()
	ours, theirs := newCA(t), newCA(t)
	info, err := keyring.ParseCSR(csrPEM(t, testKeys()["p256"]))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := theirs.Sign(info, "wp_a", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ours.Verify(certPEM, t0); err == nil {
		t.Error("verified a certificate of another CA")
	}
	if _, err := ours.Verify(ours.CertificatePEM(), t0); err == nil {
		t.Error("verified the CA certificate as a pool certificate")
	}
	if _, err := ours.Verify([]byte("garbage"), t0); err == nil {
		t.Error("verified garbage")
	}
	// A self-made certificate with the same subject as ours is not ours.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caCert := parseCert(t, ours.CertificatePEM())
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: caCert.Subject, NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if _, err := ours.Verify(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), t0.Add(time.Hour)); err == nil {
		t.Error("verified an impostor CA certificate")
	}
}
