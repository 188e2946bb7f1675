package keyring

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"gocloud.dev/secrets"
	"gocloud.dev/secrets/awskms"
	"gocloud.dev/secrets/azurekeyvault"
	"gocloud.dev/secrets/gcpkms"
	"gocloud.dev/secrets/hashivault"
	"gocloud.dev/secrets/localsecrets"
)

// Keeper encrypts and decrypts secrets at rest (private keys, sensitive
// database fields, state files and run logs in the bucket) with a key held
// by a gocloud.dev secrets driver. Every value is an envelope (envelope.go):
// the driver only wraps a fresh AES-256 data key per value.
type Keeper struct {
	k      *secrets.Keeper
	scheme string
}

// KeeperOption supplies what a keeper URL refers to but must not hold.
type KeeperOption func(*keeperOptions)

type keeperOptions struct {
	rsaKey string
}

// WithRSAPrivateKey gives rsakey:// (without a file path) its key: the PEM
// text, or base64 of it, that the operator put in RSAKeyEnv.
func WithRSAPrivateKey(text string) KeeperOption {
	return func(o *keeperOptions) { o.rsaKey = text }
}

// keeperSchemes is the only mux Gantry opens keepers from, so that the
// schemes listed here are all GANTRY_SECRETS_URL accepts. The cloud KMS
// drivers are opened the way their packages open them on gocloud's default
// mux (defaultKeeperOpener): with the cloud's standard credentials from the
// environment. To accept another kind of keeper, add its driver here and
// mention the scheme in docs/configuration.md.
func keeperSchemes(o keeperOptions) *secrets.URLMux {
	m := new(secrets.URLMux)
	m.RegisterKeeper(localsecrets.Scheme, new(localsecrets.URLOpener))
	m.RegisterKeeper(RSAKeyScheme, rsaKeyOpener{fromEnv: o.rsaKey})
	for _, scheme := range []string{awskms.Scheme, gcpkms.Scheme, azurekeyvault.Scheme, hashivault.Scheme} {
		m.RegisterKeeper(scheme, defaultKeeperOpener{})
	}
	return m
}

// defaultKeeperOpener opens a URL with the opener its driver package
// registered on gocloud's default mux when it was imported (above). Those
// openers are unexported; they read credentials lazily from the environment
// (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*, VAULT_SERVER_URL and
// VAULT_SERVER_TOKEN).
type defaultKeeperOpener struct{}

// OpenKeeperURL implements secrets.KeeperURLOpener.
func (defaultKeeperOpener) OpenKeeperURL(ctx context.Context, u *url.URL) (*secrets.Keeper, error) {
	return secrets.DefaultURLMux().OpenKeeperURL(ctx, u)
}

// KeeperSchemes returns the schemes GANTRY_SECRETS_URL accepts, sorted.
func KeeperSchemes() []string { return keeperSchemes(keeperOptions{}).KeeperSchemes() }

// OpenKeeper opens the keeper at rawURL: base64key://<32 bytes in
// base64url> (a local key, see DevKeeperURL), rsakey:// (see RSAKeyScheme),
// or a KMS (awskms://, gcpkms://, azurekeyvault://, hashivault://). Opening
// does not reach a KMS; the first Encrypt or Decrypt does. The URL may itself
// hold the key, so no error repeats it.
func OpenKeeper(ctx context.Context, rawURL string, opts ...KeeperOption) (*Keeper, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		// url.Parse's error quotes the URL, which may be the key itself.
		return nil, errors.New("open keeper: the secrets URL is not a URL such as base64key://<key>, rsakey:// or awskms://<key id>")
	}
	var o keeperOptions
	for _, opt := range opts {
		opt(&o)
	}
	mux := keeperSchemes(o)
	scheme := strings.ToLower(u.Scheme)
	if !mux.ValidKeeperScheme(scheme) {
		return nil, fmt.Errorf("open keeper: secrets URL scheme %q is not supported (supported: %s)", scheme, strings.Join(mux.KeeperSchemes(), ", "))
	}
	if scheme == localsecrets.Scheme && u.Host == "" {
		// localsecrets would make up a random key, and everything encrypted
		// with it would be lost at the next start.
		return nil, fmt.Errorf("open keeper: a %s:// URL must hold the key (32 bytes, base64url)", localsecrets.Scheme)
	}
	k, err := mux.OpenKeeperURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open keeper %s: %w", scheme, err)
	}
	return &Keeper{k: k, scheme: scheme}, nil
}

// Scheme is the scheme of the keeper's URL (base64key, rsakey, awskms, ...),
// which says what kind of key it is without revealing it.
func (k *Keeper) Scheme() string { return k.scheme }

// Encrypt returns plaintext encrypted (and authenticated) with a new data
// key that the keeper's key wraps.
func (k *Keeper) Encrypt(ctx context.Context, plaintext []byte) ([]byte, error) {
	ct, err := sealEnvelope(ctx, k.k.Encrypt, plaintext)
	if err != nil {
		return nil, fmt.Errorf("keeper %s: encrypt: %w", k.scheme, err)
	}
	return ct, nil
}

// Decrypt returns the plaintext of ciphertext made by Encrypt with the same
// key; any other input, or another key, is an error. Values encrypted by
// the driver directly, as Gantry did before envelopes, are read too.
func (k *Keeper) Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error) {
	var pt []byte
	var err error
	if isEnvelope(ciphertext) {
		pt, err = openEnvelope(ctx, k.k.Decrypt, ciphertext)
	} else {
		pt, err = k.k.Decrypt(ctx, ciphertext)
	}
	if err != nil {
		return nil, fmt.Errorf("keeper %s: decrypt (wrong key or damaged data?): %w", k.scheme, err)
	}
	return pt, nil
}

// Close releases the keeper's driver resources. Using the keeper afterwards
// is an error.
func (k *Keeper) Close() error {
	if err := k.k.Close(); err != nil {
		return fmt.Errorf("keeper: close: %w", err)
	}
	return nil
}
