package objstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/testenv"
)

// testKeeper opens a base64key:// keeper with a random key.
func testKeeper(t *testing.T) *keyring.Keeper {
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

// openURL opens the bucket at u, closed when the test ends.
func openURL(t *testing.T, u string) *blob.Bucket {
	t.Helper()
	b, err := objstore.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// The one conformance suite of the bucket kinds Gantry's tests can reach:
// what Gantry does with a bucket (state files and logs encrypted at rest,
// saved workspaces streamed as they are, listing and deleting) behaves the
// same on each.
func TestBucketConformance(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"file": func(t *testing.T) string {
			u, err := objstore.FileURL(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			return u
		},
		"mem": func(*testing.T) string { return "mem://" },
		"s3 (versitygw)": func(t *testing.T) string {
			return testenv.S3(t).NewBucket(t, "gantry-state")
		},
	}
	for name, newURL := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := openURL(t, newURL(t))
			store, err := objstore.NewStore(b, testKeeper(t))
			if err != nil {
				t.Fatal(err)
			}

			state := []byte(`{"version": 4, "serial": 1, "lineage": "l", "outputs": {"password": "hunter2"}}`)
			if err := store.WriteEncrypted(ctx, "state/stk_1/1-abc", state, "application/json"); err != nil {
				t.Fatal(err)
			}
			got, err := store.ReadEncrypted(ctx, "state/stk_1/1-abc")
			if err != nil || !bytes.Equal(got, state) {
				t.Fatalf("ReadEncrypted = %q, %v", got, err)
			}
			raw, err := b.ReadAll(ctx, "state/stk_1/1-abc")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, []byte(objstore.EncryptedHeader)) || bytes.Contains(raw, []byte("hunter2")) || bytes.Contains(raw, []byte("lineage")) {
				t.Fatalf("the stored object is not ciphertext: %q", raw)
			}

			// A large object (a state file may have 64 MiB) goes in one piece.
			large := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			if err := store.WriteEncrypted(ctx, "runs/run_1/logs/PLANNING.log", large, "text/plain"); err != nil {
				t.Fatal(err)
			}
			if got, err := store.ReadEncrypted(ctx, "runs/run_1/logs/PLANNING.log"); err != nil || !bytes.Equal(got, large) {
				t.Fatalf("ReadEncrypted of 4 MiB: %d bytes, %v", len(got), err)
			}

			// A saved workspace is sealed already: it is streamed as it is.
			w, err := b.NewWriter(ctx, "runs/run_1/workspace.tar.gz.sealed", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, bytes.NewReader(large)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := b.NewReader(ctx, "runs/run_1/workspace.tar.gz.sealed", nil)
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(streamed, large) || r.Size() != int64(len(large)) {
				t.Fatalf("the streamed object: %d bytes of %d, %v", len(streamed), r.Size(), err)
			}

			var keys []string
			it := b.List(&blob.ListOptions{Prefix: "runs/"})
			for {
				obj, err := it.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, obj.Key)
			}
			sort.Strings(keys)
			if strings.Join(keys, " ") != "runs/run_1/logs/PLANNING.log runs/run_1/workspace.tar.gz.sealed" {
				t.Errorf("listed %v", keys)
			}

			if err := b.Delete(ctx, "runs/run_1/workspace.tar.gz.sealed"); err != nil {
				t.Fatal(err)
			}
			_, err = store.ReadEncrypted(ctx, "runs/run_1/workspace.tar.gz.sealed")
			if gcerrors.Code(err) != gcerrors.NotFound {
				t.Fatalf("reading a deleted object: %v (code %v), want NotFound", err, gcerrors.Code(err))
			}
			if err := b.Delete(ctx, "runs/run_1/workspace.tar.gz.sealed"); gcerrors.Code(err) != gcerrors.NotFound {
				t.Fatalf("deleting a deleted object: %v", err)
			}
		})
	}
}
