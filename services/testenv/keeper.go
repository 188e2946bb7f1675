package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/objstore"
)

// Keeper opens a secrets keeper with a random local key (base64key://),
// closed when the test ends.
func Keeper(t testing.TB) *keyring.Keeper {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := keyring.OpenKeeper(context.Background(), "base64key://"+base64.URLEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// ObjectStore opens the bucket at blobURL (file://, mem://, or an S3
// server's bucket) as a store that encrypts with keeper; the bucket is
// closed when the test ends.
func ObjectStore(t testing.TB, blobURL string, keeper objstore.Keeper) *objstore.Store {
	t.Helper()
	b, err := objstore.Open(context.Background(), blobURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s, err := objstore.NewStore(b, keeper)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
