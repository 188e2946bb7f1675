package keyring

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the key store needs of PostgreSQL; *pgxpool.Pool, *pgx.Conn
// and pgx.Tx satisfy it. The database must have the server_keys table
// (eventstore.Migrate).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// KeyStore keeps the server's named private keys in PostgreSQL, encrypted by
// a Keeper, so that every server process uses the same keys and a database
// dump alone does not reveal them.
type KeyStore struct {
	db     DB
	keeper *Keeper
}

// NewKeyStore returns a key store on db that encrypts with keeper.
func NewKeyStore(db DB, keeper *Keeper) *KeyStore {
	return &KeyStore{db: db, keeper: keeper}
}

// sealPrefix is put before a private key's DER before it is encrypted, with
// the key's name, so that a ciphertext copied into another row (say, the API
// key into the CA's) is refused instead of used.
const sealPrefix = "gantry server key v1\x00"

// LoadOrCreate returns the key called name, generating it with generate and
// storing it first if there is none. Server processes starting together
// may all generate a key; one insert wins and every caller gets the winner.
func (s *KeyStore) LoadOrCreate(ctx context.Context, name string, generate func() (crypto.Signer, error)) (crypto.Signer, error) {
	if name == "" {
		return nil, errors.New("key store: key name must not be empty")
	}
	key, err := s.load(ctx, name)
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return key, err
	}
	fresh, err := generate()
	if err != nil {
		return nil, fmt.Errorf("key store: generate key %s: %w", name, err)
	}
	if fresh == nil {
		return nil, fmt.Errorf("key store: generate key %s: returned no key", name)
	}
	der, err := x509.MarshalPKCS8PrivateKey(fresh)
	if err != nil {
		return nil, fmt.Errorf("key store: encode key %s: %w", name, err)
	}
	pubPEM, err := publicPEM(fresh.Public())
	if err != nil {
		return nil, fmt.Errorf("key store: key %s: %w", name, err)
	}
	plain := append([]byte(sealPrefix+name+"\x00"), der...)
	clear(der)
	sealed, err := s.keeper.Encrypt(ctx, plain)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("key store: key %s: %w", name, err)
	}
	if _, err := s.db.Exec(ctx,
		`INSERT INTO server_keys (name, public_pem, private_ciphertext) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, pubPEM, sealed); err != nil {
		return nil, fmt.Errorf("key store: store key %s: %w", name, err)
	}
	key, err = s.load(ctx, name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("key store: key %s vanished after it was stored", name)
	}
	return key, err
}

// load reads and decrypts the key called name; pgx.ErrNoRows if there is none.
func (s *KeyStore) load(ctx context.Context, name string) (crypto.Signer, error) {
	var pubPEM string
	var sealed []byte
	err := s.db.QueryRow(ctx, `SELECT public_pem, private_ciphertext FROM server_keys WHERE name = $1`, name).Scan(&pubPEM, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("key store: read key %s: %w", name, err)
	}
	plain, err := s.keeper.Decrypt(ctx, sealed)
	if err != nil {
		return nil, fmt.Errorf("key store: key %s: %w", name, err)
	}
	defer clear(plain)
	der, ok := bytes.CutPrefix(plain, []byte(sealPrefix+name+"\x00"))
	if !ok {
		return nil, fmt.Errorf("key store: key %s: the stored ciphertext belongs to another key", name)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("key store: key %s: decode private key: %w", name, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key store: key %s: a %T cannot sign", name, parsed)
	}
	wantPEM, err := publicPEM(key.Public())
	if err != nil {
		return nil, fmt.Errorf("key store: key %s: %w", name, err)
	}
	if wantPEM != pubPEM {
		return nil, fmt.Errorf("key store: key %s: the private key does not match the stored public key", name)
	}
	return key, nil
}

// LoadOrCreateCertificate returns the PEM certificate stored with the key
// called name, storing the one create makes if there is none yet. As with
// LoadOrCreate, concurrent callers all get the first certificate stored.
// The key must exist; checking that the certificate belongs to it is the
// caller's business.
func (s *KeyStore) LoadOrCreateCertificate(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	cert, err := s.certificate(ctx, name)
	if err != nil || cert != nil {
		return cert, err
	}
	fresh, err := create()
	if err != nil {
		return nil, fmt.Errorf("key store: create certificate for %s: %w", name, err)
	}
	if len(fresh) == 0 {
		return nil, fmt.Errorf("key store: create certificate for %s: returned nothing", name)
	}
	if _, err := s.db.Exec(ctx,
		`UPDATE server_keys SET certificate_pem = $2 WHERE name = $1 AND certificate_pem IS NULL`,
		name, string(fresh)); err != nil {
		return nil, fmt.Errorf("key store: store certificate for %s: %w", name, err)
	}
	cert, err = s.certificate(ctx, name)
	if err == nil && cert == nil {
		return nil, fmt.Errorf("key store: certificate for %s vanished after it was stored", name)
	}
	return cert, err
}

// certificate returns the certificate stored with name, nil if none yet.
func (s *KeyStore) certificate(ctx context.Context, name string) ([]byte, error) {
	var cert *string
	err := s.db.QueryRow(ctx, `SELECT certificate_pem FROM server_keys WHERE name = $1`, name).Scan(&cert)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("key store: no key %s to go with a certificate", name)
	}
	if err != nil {
		return nil, fmt.Errorf("key store: read certificate for %s: %w", name, err)
	}
	if cert == nil {
		return nil, nil
	}
	return []byte(*cert), nil
}

// publicPEM returns pub as a PEM "PUBLIC KEY" (PKIX).
func publicPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
