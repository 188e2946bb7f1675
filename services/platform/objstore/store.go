package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"gocloud.dev/blob"
)

// Keeper encrypts and decrypts values; *keyring.Keeper is the one Gantry's
// servers use.
type Keeper interface {
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// encryptedHeader starts every object WriteEncrypted stores; the keeper's
// ciphertext follows. An object without it was stored in clear before
// encryption at rest, and is read as it is.
const encryptedHeader = "gantry-encrypted-object-v1\n"

// Store is Gantry's object storage: the bucket, and the keeper that
// encrypts at rest what must not be readable there (state files, run logs).
// Objects that are encrypted already (saved workspaces, sealed to a pool's
// key) go to Bucket as they are.
type Store struct {
	bucket *blob.Bucket
	keeper Keeper
}

// NewStore returns the store of bucket whose objects keeper encrypts.
func NewStore(bucket *blob.Bucket, keeper Keeper) (*Store, error) {
	var errs []error
	if bucket == nil {
		errs = append(errs, errors.New("object store: bucket is nil"))
	}
	if keeper == nil {
		errs = append(errs, errors.New("object store: keeper is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Store{bucket: bucket, keeper: keeper}, nil
}

// Bucket is the bucket itself, for objects that need no encryption at rest
// and for listing and deleting.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// WriteEncrypted stores data under key, encrypted with the keeper. The key
// is encrypted with the data, so that an object copied under another key
// is refused when read. contentType is the type of data, kept as metadata.
func (s *Store) WriteEncrypted(ctx context.Context, key string, data []byte, contentType string) error {
	sealed, err := s.keeper.Encrypt(ctx, boundTo(key, data))
	if err != nil {
		return fmt.Errorf("encrypt object %s: %w", key, err)
	}
	obj := append([]byte(encryptedHeader), sealed...)
	opts := &blob.WriterOptions{ContentType: "application/octet-stream", Metadata: map[string]string{"gantry-content-type": contentType}}
	if err := s.bucket.WriteAll(ctx, key, obj, opts); err != nil {
		return fmt.Errorf("store object %s: %w", key, err)
	}
	return nil
}

// ReadEncrypted returns the data WriteEncrypted stored under key, or an
// object stored there in clear before encryption at rest. An error for a
// missing object keeps its gcerrors.NotFound code.
func (s *Store) ReadEncrypted(ctx context.Context, key string) ([]byte, error) {
	obj, err := s.bucket.ReadAll(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", key, err)
	}
	sealed, ok := bytes.CutPrefix(obj, []byte(encryptedHeader))
	if !ok {
		return obj, nil
	}
	plain, err := s.keeper.Decrypt(ctx, sealed)
	if err != nil {
		return nil, fmt.Errorf("decrypt object %s: %w", key, err)
	}
	data, ok := bytes.CutPrefix(plain, boundTo(key, nil))
	if !ok {
		return nil, fmt.Errorf("decrypt object %s: it was encrypted for another key", key)
	}
	return data, nil
}

// boundTo is data prefixed with the object key it is stored under.
func boundTo(key string, data []byte) []byte {
	out := make([]byte, 0, len(key)+1+len(data))
	out = append(out, key...)
	out = append(out, 0)
	return append(out, data...)
}
