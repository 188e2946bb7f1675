package objstore

import (
	"context"

	"gocloud.dev/blob"
)

// OpenUnchecked opens the bucket at rawURL without reaching it, for URLs
// of clouds these tests cannot reach.
func OpenUnchecked(ctx context.Context, rawURL string) (*blob.Bucket, error) {
	b, _, err := open(ctx, rawURL)
	return b, err
}

// EncryptedHeader starts every encrypted object.
const EncryptedHeader = encryptedHeader
