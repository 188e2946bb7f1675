package keyring

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"
)

// Keeper encrypts and decrypts secrets at rest (private keys, sensitive
// database fields) with a key held by a gocloud.dev secrets driver.
type Keeper struct {
	k *secrets.Keeper
}

// keeperSchemes is the only mux Gantry opens keepers from. The blank imports
// that register drivers on gocloud's default mux are avoided on purpose, so
// that the binary carries only the drivers listed here.
//
// To accept another kind of keeper, add its module (go get gocloud.dev's
// secrets/awskms, secrets/gcpkms or secrets/hashivault) and register its
// opener below, e.g.
//
//	m.RegisterKeeper(awskms.Scheme, new(awskms.URLOpener))
//	m.RegisterKeeper(gcpkms.Scheme, new(gcpkms.URLOpener))
//	m.RegisterKeeper(hashivault.Scheme, new(hashivault.URLOpener))
//
// then mention the scheme in the configuration documentation.
var keeperSchemes = func() *secrets.URLMux {
	m := new(secrets.URLMux)
	m.RegisterKeeper(localsecrets.Scheme, new(localsecrets.URLOpener))
	return m
}()

// OpenKeeper opens the keeper at rawURL. Only base64key://<32 bytes in
// base64url> (a local key, see DevKeeperURL) is built in; see keeperSchemes
// for adding a KMS. The URL may itself hold the key, so no error repeats it.
func OpenKeeper(ctx context.Context, rawURL string) (*Keeper, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		// url.Parse's error quotes the URL, which may be the key itself.
		return nil, errors.New("open keeper: the secrets URL is not a URL such as base64key://<key> or awskms://<key id>")
	}
	scheme := strings.ToLower(u.Scheme)
	if !keeperSchemes.ValidKeeperScheme(scheme) {
		return nil, fmt.Errorf("open keeper: secrets URL scheme %q is not supported (supported: %s)", scheme, localsecrets.Scheme)
	}
	if scheme == localsecrets.Scheme && u.Host == "" {
		// localsecrets would make up a random key, and everything encrypted
		// with it would be lost at the next start.
		return nil, fmt.Errorf("open keeper: a %s:// URL must hold the key (32 bytes, base64url)", localsecrets.Scheme)
	}
	k, err := keeperSchemes.OpenKeeperURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open keeper: %w", err)
	}
	return &Keeper{k: k}, nil
}

// Encrypt returns plaintext encrypted (and authenticated) with the keeper's key.
func (k *Keeper) Encrypt(ctx context.Context, plaintext []byte) ([]byte, error) {
	ct, err := k.k.Encrypt(ctx, plaintext)
	if err != nil {
		return nil, fmt.Errorf("keeper: encrypt: %w", err)
	}
	return ct, nil
}

// Decrypt returns the plaintext of ciphertext made by Encrypt with the same
// key; any other input, or another key, is an error.
func (k *Keeper) Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error) {
	pt, err := k.k.Decrypt(ctx, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("keeper: decrypt (wrong key or damaged data?): %w", err)
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
