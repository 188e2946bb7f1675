package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// CAPools is the PoolAuthority of a Gantry server: its pool CA signs the
// certificates, pool secrets are made as services/platform/keyring defines
// them, and tokens as services/worker/protocol does.
type CAPools struct {
	CA  *keyring.CA
	Now func() time.Time // default time.Now
}

var _ PoolAuthority = CAPools{}

// Certify parses csrPEM and signs a certificate for the pool. Whether the
// key is strong enough is the domain's call (workerpool.Create and Reset
// judge the certificate); its verdict on certificate.* fields is reported
// on "csr", the field the caller can fix.
func (p CAPools) Certify(_ context.Context, poolID string, csrPEM []byte) (workerpool.Certificate, error) {
	csr, err := keyring.ParseCSR(csrPEM)
	if err != nil {
		return workerpool.Certificate{}, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	_, cert, err := p.CA.Sign(csr, poolID, now())
	if err != nil {
		return workerpool.Certificate{}, err
	}
	return cert, nil
}

// NewSecret returns a fresh pool secret and its hash.
func (CAPools) NewSecret() (secret, hash string, err error) { return keyring.NewPoolSecret() }

// Token encodes the pool token as the worker protocol defines it.
func (CAPools) Token(t PoolToken) (string, error) {
	return protocol.EncodePoolToken(protocol.PoolToken(t))
}

// csrField reports the domain's verdict on a certificate made from a CSR
// against the field the caller sent, "csr": the certificate is derived from
// it, and "certificate.key_bits" names nothing in the request.
func csrField(err error) error {
	var out []error
	var changed bool
	for _, e := range flatten(err) {
		var v *domain.ValidationError
		if errors.As(e, &v) && strings.HasPrefix(v.Field, "certificate.") {
			out = append(out, &domain.ValidationError{Field: "csr", Problem: v.Problem})
			changed = true
			continue
		}
		out = append(out, e)
	}
	if !changed {
		return err
	}
	return errors.Join(out...)
}

// flatten returns the errors joined in err (errors.Join), or err alone.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
