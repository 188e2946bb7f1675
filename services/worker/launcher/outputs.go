package launcher

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// outputsKey returns the key a run's sensitive outputs are sealed to: the
// server's outputs key the job came with (PEM), when this launcher uploads
// sensitive outputs (GANTRY_SENSITIVE_OUTPUT_UPLOAD_ENABLED); nil
// otherwise, and then only their names are recorded.
//
// Why the server's own key: a sensitive output is for the server to use
// (stack dependencies), so it must be readable there, unlike the pool's
// secrets; sealed on the worker to a key whose private half only the
// server holds (encrypted at rest by its secrets keeper), the value is
// never in the clear outside the run: not on NATS, not in the event store,
// not in a read model, whatever the transport's TLS.
func (l *Launcher) outputsKey(keyPEM string) (crypto.PublicKey, error) {
	if !l.cfg.SensitiveOutputs {
		return nil, nil
	}
	if keyPEM == "" {
		l.logger().Warn("the server sent no outputs key: the values of sensitive outputs are not uploaded")
		return nil, nil
	}
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("the server's outputs key is not a PEM public key")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the server's outputs key: %w", err)
	}
	return key, nil
}
