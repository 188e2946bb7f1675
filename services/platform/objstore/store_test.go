package objstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/objstore"
)

func newMemStore(t *testing.T, keeper objstore.Keeper) *objstore.Store {
	t.Helper()
	s, err := objstore.NewStore(openURL(t, "mem://"), keeper)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Objects stored in clear before encryption at rest are still read.
func TestStoreReadsObjectsFromBeforeEncryption(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, testKeeper(t))
	old := []byte(`{"version": 4, "serial": 7, "lineage": "before"}`)
	if err := s.Bucket().WriteAll(ctx, "state/stk_1/7-old", old, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadEncrypted(ctx, "state/stk_1/7-old"); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("ReadEncrypted of a clear object = %q, %v", got, err)
	}
}

// An encrypted object is bound to its key and to the keeper: copied under
// another key, damaged, or read with another keeper, it is refused.
func TestStoreRefusesMovedDamagedAndForeignObjects(t *testing.T) {
	ctx := context.Background()
	keeper := testKeeper(t)
	s := newMemStore(t, keeper)
	if err := s.WriteEncrypted(ctx, "runs/run_a/logs/PLANNING.log", []byte("plan of a\n"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Bucket().ReadAll(ctx, "runs/run_a/logs/PLANNING.log")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bucket().WriteAll(ctx, "runs/run_b/logs/PLANNING.log", raw, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadEncrypted(ctx, "runs/run_b/logs/PLANNING.log"); err == nil || !strings.Contains(err.Error(), "encrypted for another key") {
		t.Errorf("an object copied under another key: %v", err)
	}
	damaged := bytes.Clone(raw)
	damaged[len(damaged)-3] ^= 1
	if err := s.Bucket().WriteAll(ctx, "runs/run_c/logs/PLANNING.log", damaged, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadEncrypted(ctx, "runs/run_c/logs/PLANNING.log"); err == nil {
		t.Error("a damaged object was read")
	}
	other, err := objstore.NewStore(s.Bucket(), testKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ReadEncrypted(ctx, "runs/run_a/logs/PLANNING.log"); err == nil {
		t.Error("another keeper read the object")
	}
	if _, err := objstore.NewStore(nil, nil); err == nil || !strings.Contains(err.Error(), "bucket is nil") || !strings.Contains(err.Error(), "keeper is nil") {
		t.Errorf("NewStore(nil, nil): %v", err)
	}
}
