package keyring

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"gocloud.dev/gcerrors"
	"gocloud.dev/secrets"

	"github.com/gantryhq/gantry/services/platform/settings"
)

// RSAKeyScheme is the scheme of Gantry's built-in keeper: rsakey:// takes
// the operator's RSA private key from GANTRY_ENCRYPTION_RSA_PRIVATE_KEY
// (handed to OpenKeeper with WithRSAPrivateKey), rsakey:///path/key.pem
// from a file. It wraps each value's AES-256 data key (see envelope.go)
// with RSA-OAEP-SHA256.
const RSAKeyScheme = "rsakey"

// RSAKeyEnv names the variable rsakey:// reads its key from; cmd/ reads it.
var RSAKeyEnv = settings.EncryptionRSAKey.Name

// minRSAKeyBits is the smallest operator key accepted.
const minRSAKeyBits = 2048

// rsaOAEPLabel binds the wrapped data keys to their use.
const rsaOAEPLabel = "gantry rsakey data key v1"

// rsaKeyOpener opens rsakey:// URLs; fromEnv is the key text the process
// was given in RSAKeyEnv.
type rsaKeyOpener struct {
	fromEnv string
}

// OpenKeeperURL implements secrets.KeeperURLOpener.
func (o rsaKeyOpener) OpenKeeperURL(_ context.Context, u *url.URL) (*secrets.Keeper, error) {
	if u.Host != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("an rsakey URL is rsakey:// (the key in " + RSAKeyEnv + ") or rsakey:///absolute/path/to/key.pem, with no host or parameters")
	}
	text, where := o.fromEnv, RSAKeyEnv
	if u.Path != "" {
		data, err := os.ReadFile(u.Path)
		if err != nil {
			return nil, fmt.Errorf("rsakey: read the private key: %w", err)
		}
		text, where = string(data), u.Path
	} else if strings.TrimSpace(text) == "" {
		return nil, errors.New("rsakey:// takes the RSA private key from " + RSAKeyEnv + ", which is empty (or name a file: rsakey:///etc/gantry/encryption.pem)")
	}
	key, err := parseRSAPrivateKey(text)
	if err != nil {
		return nil, fmt.Errorf("rsakey: the private key in %s: %w", where, err)
	}
	return secrets.NewKeeper(rsaKeeper{key: key}), nil
}

// parseRSAPrivateKey reads an RSA private key as PEM (PKCS#1 or PKCS#8), or
// as base64 of that PEM (which fits in an environment variable on one line).
func parseRSAPrivateKey(text string) (*rsa.PrivateKey, error) {
	text = strings.TrimSpace(text)
	data := []byte(text)
	if !strings.HasPrefix(text, "-----BEGIN") {
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, errors.New("neither PEM nor base64 of PEM (base64 -w0 key.pem)")
		}
		data = raw
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: want -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS#1 RSA private key")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T key: want an RSA key", k)
		}
		key = rk
	default:
		return nil, fmt.Errorf("a PEM %q block: want an RSA private key", block.Type)
	}
	if bits := key.N.BitLen(); bits < minRSAKeyBits {
		return nil, fmt.Errorf("a %d-bit RSA key: use at least %d bits (openssl genrsa 4096)", bits, minRSAKeyBits)
	}
	return key, nil
}

// rsaKeeper is the secrets driver of rsakey://: RSA-OAEP-SHA256 with the
// operator's key. It encrypts only what fits (the data keys of envelopes).
type rsaKeeper struct {
	key *rsa.PrivateKey
}

// Encrypt implements driver.Keeper.
func (k rsaKeeper) Encrypt(_ context.Context, plaintext []byte) ([]byte, error) {
	return rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.key.PublicKey, plaintext, []byte(rsaOAEPLabel))
}

// Decrypt implements driver.Keeper.
func (k rsaKeeper) Decrypt(_ context.Context, ciphertext []byte) ([]byte, error) {
	return rsa.DecryptOAEP(sha256.New(), nil, k.key, ciphertext, []byte(rsaOAEPLabel))
}

// Close implements driver.Keeper.
func (rsaKeeper) Close() error { return nil }

// ErrorAs implements driver.Keeper.
func (rsaKeeper) ErrorAs(error, any) bool { return false }

// ErrorCode implements driver.Keeper.
func (rsaKeeper) ErrorCode(error) gcerrors.ErrorCode { return gcerrors.Unknown }
