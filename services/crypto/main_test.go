package crypto_test

import (
	"context"
	"encoding/base64"
	"testing"

	gcrypto "github.com/gantryhq/gantry/services/crypto"
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
func openKeeper(t testing.TB, url string) *gcrypto.Keeper {
	t.Helper()
	k, err := gcrypto.OpenKeeper(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}
