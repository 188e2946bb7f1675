package keyring_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/testenv"
)

// The keeper is chosen at the first start: the same keeper passes every
// later check, another one (another key, another kind) is refused with an
// error naming both kinds.
func TestCheckKeeperHoldsTheInstallationToItsFirstKeeper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	first := openKeeper(t, keeperURL(1))
	for range 2 {
		if err := keyring.CheckKeeper(ctx, pool, first); err != nil {
			t.Fatal(err)
		}
	}
	// The same key opened again, as after a restart.
	if err := keyring.CheckKeeper(ctx, pool, openKeeper(t, keeperURL(1))); err != nil {
		t.Fatalf("the same key after a restart: %v", err)
	}
	err := keyring.CheckKeeper(ctx, pool, openKeeper(t, keeperURL(2)))
	if !errors.Is(err, keyring.ErrKeeperChanged) || !strings.Contains(err.Error(), "this base64key keeper") {
		t.Fatalf("another key: %v", err)
	}
	rsa, err := openRSAKeeper(t, "rsakey://", pkcs1PEM(testRSAKey(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	err = keyring.CheckKeeper(ctx, pool, rsa)
	if !errors.Is(err, keyring.ErrKeeperChanged) || !strings.Contains(err.Error(), "this rsakey keeper cannot decrypt what the installation's base64key keeper encrypted") {
		t.Fatalf("another kind of keeper: %v", err)
	}
	var scheme string
	if err := pool.QueryRow(ctx, `SELECT scheme FROM keeper_check`).Scan(&scheme); err != nil || scheme != "base64key" {
		t.Fatalf("stored scheme %q, %v", scheme, err)
	}
}

// An installation from before the check (server keys, no check value) keeps
// the keeper that encrypted its keys: another one is refused, and not
// recorded as the installation's.
func TestCheckKeeperOfAnInstallationFromBeforeTheCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	if _, err := keyring.NewKeyStore(pool, openKeeper(t, keeperURL(1))).LoadOrCreate(ctx, "ca", genEd25519); err != nil {
		t.Fatal(err)
	}
	if err := keyring.CheckKeeper(ctx, pool, openKeeper(t, keeperURL(2))); !errors.Is(err, keyring.ErrKeeperChanged) || !strings.Contains(err.Error(), "server key ca") {
		t.Fatalf("another keeper than the keys': %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM keeper_check`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d check values (%v) after a refused keeper", n, err)
	}
	if err := keyring.CheckKeeper(ctx, pool, openKeeper(t, keeperURL(1))); err != nil {
		t.Fatalf("the keys' keeper: %v", err)
	}
	if err := keyring.CheckKeeper(ctx, pool, openKeeper(t, keeperURL(2))); !errors.Is(err, keyring.ErrKeeperChanged) {
		t.Fatalf("another keeper after the check was stored: %v", err)
	}
}

// Servers of a new installation starting at once with different keepers:
// one keeper wins, every other starter is refused.
func TestCheckKeeperConcurrentFirstStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	const n = 4
	keepers := make([]*keyring.Keeper, n)
	for i := range keepers {
		keepers[i] = openKeeper(t, keeperURL(byte(10+i%2)))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = keyring.CheckKeeper(ctx, pool, keepers[i]) })
	}
	wg.Wait()
	var winner byte
	for i, err := range errs {
		key := byte(10 + i%2)
		switch {
		case err == nil && (winner == 0 || winner == key):
			winner = key
		case err == nil:
			t.Errorf("starter %d with key %d passed after key %d won", i, key, winner)
		case !errors.Is(err, keyring.ErrKeeperChanged):
			t.Errorf("starter %d: %v", i, err)
		}
	}
	if winner == 0 {
		t.Fatalf("no starter passed: %v", errs)
	}
}
