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
var errNoSecretsURL = errors.New("GANTRY_SECRETS_URL is required: the keeper that encrypts secrets and the server's keys (base64key://<32 bytes in base64url>, or a KMS URL)")

// serverKeys is the key material a server process works with: the secrets
// keeper, the pool CA, the API token issuer and the key sensitive outputs
// are sealed to, whose private keys live in the database encrypted by the
// keeper.
type serverKeys struct {
	keeper  *keyring.Keeper
	ca      *keyring.CA
	issuer  *auth.Issuer
	outputs crypto.Signer
}

// openKeys opens the keeper at secretsURL and loads (on first start,
// creates) the CA and the token signing key. The schema must be migrated.
func openKeys(ctx context.Context, pool *pgxpool.Pool, secretsURL string) (*serverKeys, error) {
	if secretsURL == "" {
		return nil, errNoSecretsURL
	}
	keeper, err := keyring.OpenKeeper(ctx, secretsURL)
	if err != nil {
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
	outputs, err := keyring.LoadOrCreateOutputsKey(ctx, keys)
	if err != nil {
		keeper.Close()
		return nil, err
	}
	return &serverKeys{keeper: keeper, ca: ca, issuer: issuer, outputs: outputs}, nil
}

// close releases the keeper.
func (k *serverKeys) close() error { return k.keeper.Close() }
