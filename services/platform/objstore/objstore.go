// Package objstore opens Gantry's object storage through gocloud.dev from a
// URL (file:// by default; s3://, gs://, azblob:// in the clouds and on
// S3-compatible servers; mem:// for tests), and keeps the objects that must
// not be readable in the bucket encrypted at rest (Store).
package objstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
)

// bucketSchemes is the only mux Gantry opens buckets from, so that the
// schemes listed here are all GANTRY_BLOB_URL accepts. The cloud drivers
// are opened the way their packages open them on gocloud's default mux
// (defaultBucketOpener): with the cloud's standard credentials from the
// environment. To accept another kind of bucket, add its driver here and
// document its URL in docs/configuration.md.
var bucketSchemes = func() *blob.URLMux {
	m := new(blob.URLMux)
	m.RegisterBucket(fileblob.Scheme, new(fileblob.URLOpener))
	m.RegisterBucket(memblob.Scheme, new(memblob.URLOpener))
	for _, scheme := range []string{s3blob.Scheme, gcsblob.Scheme, azureblob.Scheme} {
		m.RegisterBucket(scheme, defaultBucketOpener{})
	}
	return m
}()

// defaultBucketOpener opens a URL with the opener its driver package
// registered on gocloud's default mux when it was imported (above). Those
// openers read credentials lazily from the environment (AWS_*,
// GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*).
type defaultBucketOpener struct{}

// OpenBucketURL implements blob.BucketURLOpener.
func (defaultBucketOpener) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	return blob.DefaultURLMux().OpenBucketURL(ctx, u)
}

// Schemes returns the schemes GANTRY_BLOB_URL accepts, sorted.
func Schemes() []string { return bucketSchemes.BucketSchemes() }

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
	b, u, err := open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	if ok, err := b.IsAccessible(ctx); err != nil || !ok {
		b.Close()
		if err == nil {
			return nil, fmt.Errorf("bucket %s does not exist", u.Redacted())
		}
		return nil, fmt.Errorf("bucket %s is not accessible: %w", u.Redacted(), err)
	}
	return b, nil
}

// open opens the bucket at rawURL without reaching it.
func open(ctx context.Context, rawURL string) (*blob.Bucket, *url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, nil, fmt.Errorf("blob URL %q: must be a URL such as file:///var/lib/gantry/blobs or s3://bucket?region=eu-west-1", rawURL)
	}
	scheme := strings.ToLower(u.Scheme)
	if !bucketSchemes.ValidBucketScheme(scheme) {
		return nil, nil, fmt.Errorf("blob URL %s: scheme %q is not supported (supported: %s)", u.Redacted(), scheme, strings.Join(Schemes(), ", "))
	}
	if scheme != memblob.Scheme && scheme != fileblob.Scheme && u.Host == "" {
		return nil, nil, fmt.Errorf("blob URL %s: names no bucket (%s://<bucket>)", u.Redacted(), scheme)
	}
	if scheme == fileblob.Scheme && !u.Query().Has("metadata") {
		// Gantry reads no object's attributes back: without this, every
		// object costs a second file, its ".attrs" sidecar, to write and
		// to read. "metadata=" in the URL keeps the sidecars.
		u = withQuery(u, "metadata", string(fileblob.MetadataDontWrite))
	}
	b, err := bucketSchemes.OpenBucketURL(ctx, u)
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket %s: %w", u.Redacted(), err)
	}
	return b, u, nil
}

// withQuery returns a copy of u with the query parameter key set to value.
func withQuery(u *url.URL, key, value string) *url.URL {
	c := *u
	q := c.Query()
	q.Set(key, value)
	c.RawQuery = q.Encode()
	return &c
}
