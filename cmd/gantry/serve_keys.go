package main

import (
	"context"
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
// keeper, the pool CA and the API token issuer, whose private keys live in
// the database encrypted by the keeper.
type serverKeys struct {
	keeper *keyring.Keeper
	ca     *keyring.CA
	issuer *auth.Issuer
}

// openKeys opens the keeper at secretsURL, checks that it is the one the
// installation was set up with (keyring.CheckKeeper: on first start, it
// becomes that one), and loads (on first start, creates) the CA and the
// token signing key. The schema must be migrated.
func openKeys(ctx context.Context, pool *pgxpool.Pool, secretsURL string, opts ...keyring.KeeperOption) (*serverKeys, error) {
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
	keys := keyring.NewKeyStore(pool, keeper)
	ca, err := keyring.LoadOrCreateCA(ctx, keys, time.Now())
	if err != nil {
		keeper.Close()
		return nil, err
	}
	issuer, err := auth.NewIssuer(ctx, keys, time.Now)
	if err != nil {
		keeper.Close()
		return nil, err
	}
	return &serverKeys{keeper: keeper, ca: ca, issuer: issuer}, nil
}

// close releases the keeper.
func (k *serverKeys) close() error { return k.keeper.Close() }
