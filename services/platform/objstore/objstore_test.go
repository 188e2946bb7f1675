package objstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/objstore"
)

func TestFileBucketRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blobs")
	u, err := objstore.FileURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "file:///") {
		t.Fatalf("url = %s", u)
	}
	b, err := objstore.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WriteAll(ctx, "a/b", []byte("state"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "a", "b"))
	if err != nil || string(got) != "state" {
		t.Fatalf("file = %q, %v", got, err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"", "not a url", "nosuchscheme://x", "file:///nonexistent/gantry/blobs"} {
		if b, err := objstore.Open(ctx, u); err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	b, err := objstore.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}
