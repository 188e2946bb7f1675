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
var errNoSecretsURL = errors.New("GANTRY_SECRETS_URL is required: the keeper that encrypts secrets and the server's keys (base64key://<32 bytes in base64url>, or a KMS URL)")

// serverKeys is the key material a server process works with: the secrets
// keeper, the pool CA (whose private key lives in the database encrypted by
// the keeper) and the session token issuer (on the operator's keys).
type serverKeys struct {
	keeper *keyring.Keeper
	ca     *keyring.CA
	issuer *auth.Issuer
}

// openKeys opens the keeper at secretsURL, loads (on first start, creates)
// the CA, and makes the issuer of session tokens signed with signing. The
// schema must be migrated.
func openKeys(ctx context.Context, pool *pgxpool.Pool, secretsURL string, signing *auth.KeySet) (*serverKeys, error) {
	if secretsURL == "" {
		return nil, errNoSecretsURL
	}
	if signing == nil {
		return nil, errNoSigningKey
	}
	keeper, err := keyring.OpenKeeper(ctx, secretsURL)
	if err != nil {
		return nil, fmt.Errorf("GANTRY_SECRETS_URL: %w", err)
	}
	ca, err := keyring.LoadOrCreateCA(ctx, keyring.NewKeyStore(pool, keeper), time.Now())
	if err != nil {
		keeper.Close()
		return nil, err
	}
	issuer, err := auth.NewIssuer(signing, time.Now)
	if err != nil {
		keeper.Close()
		return nil, err
	}
	return &serverKeys{keeper: keeper, ca: ca, issuer: issuer}, nil
}

// close releases the keeper.
func (k *serverKeys) close() error { return k.keeper.Close() }
