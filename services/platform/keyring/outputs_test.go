package keyring_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/seal"
	"github.com/gantryhq/gantry/services/testenv"
)

// The outputs key is made once and kept: a value sealed to it before a
// restart opens after it.
func TestOutputsKeyOpensWhatWasSealedToIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	keeper := openKeeper(t, keeperURL(7))
	first, err := keyring.LoadOrCreateOutputsKey(ctx, keyring.NewKeyStore(pool, keeper))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Bytes(first.Public(), []byte(`"s3cret"`))
	if err != nil {
		t.Fatal(err)
	}
	again, err := keyring.LoadOrCreateOutputsKey(ctx, keyring.NewKeyStore(pool, keeper)) // a restart
	if err != nil {
		t.Fatal(err)
	}
	if !sameKey(first, again) {
		t.Fatal("a second start made another outputs key")
	}
	plain, err := seal.Open(again, sealed)
	if err != nil || !bytes.Equal(plain, []byte(`"s3cret"`)) {
		t.Errorf("opened %q, %v", plain, err)
	}
}
