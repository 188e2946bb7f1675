package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// errNoSecretsURL is the error of a server started without a keeper.
var errNoSecretsURL = errors.New("GANTRY_SECRETS_URL is required: the keeper that encrypts secrets, the server's keys, state files and run logs (rsakey:// with GANTRY_ENCRYPTION_RSA_PRIVATE_KEY, base64key://<32 bytes in base64url>, or a KMS URL such as awskms://<key id>)")

// serverKeys is the key material a server process works with: the secrets
// keeper, the pool CA and the key sensitive outputs are sealed to (whose
// private keys live in the database encrypted by the keeper), and the
// session token issuer (on the operator's keys).
type serverKeys struct {
	keeper  *keyring.Keeper
	ca      *keyring.CA
	issuer  *auth.Issuer
	outputs crypto.Signer
}

// openKeys opens the keeper and the CA (openSecrets) and makes the issuer
// of session tokens signed with signing. The schema must be migrated.
func openKeys(ctx context.Context, pool *pgxpool.Pool, secretsURL string, signing *auth.KeySet, opts ...keyring.KeeperOption) (*serverKeys, error) {
	if signing == nil {
		return nil, errNoSigningKey
	}
	keys, err := openSecrets(ctx, pool, secretsURL, opts...)
	if err != nil {
		return nil, err
	}
	if keys.issuer, err = auth.NewIssuer(signing, time.Now); err != nil {
		keys.close()
		return nil, err
	}
	return keys, nil
}

// openSecrets opens the keeper at secretsURL, checks that it is the one the
// installation was set up with (keyring.CheckKeeper: on first start, it
// becomes that one), and loads (on first start, creates) the CA: what a
// process needs that issues no session tokens (the drain). The schema must
// be migrated.
func openSecrets(ctx context.Context, pool *pgxpool.Pool, secretsURL string, opts ...keyring.KeeperOption) (*serverKeys, error) {
	if secretsURL == "" {
		return nil, errNoSecretsURL
	}
	keeper, err := keyring.OpenKeeper(ctx, secretsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("GANTRY_SECRETS_URL: %w", err)
	}
	if err := keyring.CheckKeeper(ctx, pool, keeper); err != nil {
		keeper.Close()
		return nil, fmt.Errorf("GANTRY_SECRETS_URL: %w", err)
	}
	ca, err := keyring.LoadOrCreateCA(ctx, keyring.NewKeyStore(pool, keeper), time.Now())
	if err != nil {
		keeper.Close()
		return nil, err
	}
	outputs, err := keyring.LoadOrCreateOutputsKey(ctx, keyring.NewKeyStore(pool, keeper))
	if err != nil {
		keeper.Close()
		return nil, err
	}
	return &serverKeys{keeper: keeper, ca: ca, outputs: outputs}, nil
}

// close releases the keeper.
func (k *serverKeys) close() error { return k.keeper.Close() }
