// Package objstore opens Gantry's object storage through gocloud.dev from a URL
// (file:// by default, mem:// for tests).
package objstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	// Drivers Gantry accepts in GANTRY_BLOB_URL.
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"
)

// FileURL returns the file:// URL of a bucket in dir, creating dir.
func FileURL(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("blob dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("create blob dir %s: %w", abs, err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

// Open opens the bucket at rawURL and checks that it is reachable.
func Open(ctx context.Context, rawURL string) (*blob.Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("blob url %q: must be a URL such as file:///var/lib/gantry/blobs or s3://bucket", rawURL)
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", u.Redacted(), err)
	}
	if ok, err := b.IsAccessible(ctx); err != nil || !ok {
		b.Close()
		return nil, fmt.Errorf("bucket %s is not accessible: %v", u.Redacted(), err)
	}
	return b, nil
}
