package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrKeeperChanged is matched by the error of CheckKeeper when the keeper
// cannot decrypt what the installation's keeper encrypted.
var ErrKeeperChanged = errors.New("the secrets keeper is chosen once, at install")

// keeperCheckValue is what the check row holds, encrypted.
const keeperCheckValue = "gantry keeper check v1"

// CheckKeeper makes sure that k is the keeper the installation was set up
// with. The first start stores a check value encrypted with k (the keeper_check
// table of eventstore's migrations); every later start must decrypt it. An
// installation from before the check must have a keeper that still decrypts
// its server keys. Starters racing on a new database agree on one keeper:
// the first insert wins, and the others check against it.
func CheckKeeper(ctx context.Context, db DB, k *Keeper) error {
	found, err := verifyKeeperCheck(ctx, db, k)
	if found || err != nil {
		return err
	}
	if err := decryptsServerKeys(ctx, db, k); err != nil {
		return err
	}
	sealed, err := k.Encrypt(ctx, []byte(keeperCheckValue))
	if err != nil {
		return fmt.Errorf("keeper check: %w", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO keeper_check (id, scheme, ciphertext) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		k.Scheme(), sealed); err != nil {
		return fmt.Errorf("keeper check: store the check value: %w", err)
	}
	if found, err = verifyKeeperCheck(ctx, db, k); err == nil && !found {
		err = errors.New("keeper check: the check value vanished after it was stored")
	}
	return err
}

// verifyKeeperCheck decrypts the stored check value with k; found is false
// when there is none yet.
func verifyKeeperCheck(ctx context.Context, db DB, k *Keeper) (found bool, err error) {
	var scheme string
	var sealed []byte
	var since time.Time
	err = db.QueryRow(ctx, `SELECT scheme, ciphertext, created_at FROM keeper_check WHERE id = 1`).Scan(&scheme, &sealed, &since)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("keeper check: read the check value: %w", err)
	}
	plain, err := k.Decrypt(ctx, sealed)
	if err == nil && !bytes.Equal(plain, []byte(keeperCheckValue)) {
		err = errors.New("the check value decrypts to something else")
	}
	if err != nil {
		return true, fmt.Errorf("%w: this %s keeper cannot decrypt what the installation's %s keeper encrypted on %s; start with that keeper again, or make its key reachable (%v)",
			ErrKeeperChanged, k.Scheme(), scheme, since.UTC().Format(time.DateOnly), err)
	}
	return true, nil
}

// decryptsServerKeys checks that k decrypts one of the stored server keys,
// if there is any.
func decryptsServerKeys(ctx context.Context, db DB, k *Keeper) error {
	var name string
	var sealed []byte
	err := db.QueryRow(ctx, `SELECT name, private_ciphertext FROM server_keys ORDER BY created_at LIMIT 1`).Scan(&name, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keeper check: read the server keys: %w", err)
	}
	if _, err := k.Decrypt(ctx, sealed); err != nil {
		return fmt.Errorf("%w: this %s keeper cannot decrypt the server key %s stored with the installation's keeper; start with that keeper again, or make its key reachable (%v)",
			ErrKeeperChanged, k.Scheme(), name, err)
	}
	return nil
}
