package keyring_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) {
	testenv.MainNoLeaks(m)
}

// keeperURL returns a base64key:// URL of a fixed key made from b.
func keeperURL(b byte) string {
	key := make([]byte, 32)
	for i := range key {
		key[i] = b + byte(i)
	}
	return "base64key://" + base64.URLEncoding.EncodeToString(key)
}

// openKeeper opens a keeper on url, closed when the test ends.
func openKeeper(t testing.TB, url string) *keyring.Keeper {
	t.Helper()
	k, err := keyring.OpenKeeper(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}
