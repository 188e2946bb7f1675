package keyring_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/testenv"
)

type publicKey interface{ Equal(crypto.PublicKey) bool }

func sameKey(a, b crypto.Signer) bool { return a.Public().(publicKey).Equal(b.Public()) }

func genEd25519() (crypto.Signer, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

func TestKeyStoreConcurrentLoadOrCreateYieldsOneKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	keeper := openKeeper(t, keeperURL(1))
	const n = 4
	var generated atomic.Int32
	var allGenerated sync.WaitGroup
	allGenerated.Add(n)
	keys := make([]crypto.Signer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		// One store per goroutine, as if each were its own server process.
		store := keyring.NewKeyStore(pool, keeper)
		wg.Go(func() {
			keys[i], errs[i] = store.LoadOrCreate(ctx, "api-signing", func() (crypto.Signer, error) {
				generated.Add(1)
				// Nobody inserts before everybody has generated: every
				// goroutine takes the insert path and all but one lose.
				allGenerated.Done()
				allGenerated.Wait()
				return genEd25519()
			})
		})
	}
	wg.Wait()
	if generated.Load() != n {
		t.Fatalf("%d goroutines generated a key, want %d racing", generated.Load(), n)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !sameKey(keys[i], keys[0]) {
			t.Fatalf("goroutine %d got another key than goroutine 0", i)
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM server_keys").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("server_keys has %d rows (%v), want 1", rows, err)
	}

	// A later start loads it without generating.
	key, err := keyring.NewKeyStore(pool, keeper).LoadOrCreate(ctx, "api-signing", func() (crypto.Signer, error) {
		t.Error("generate called for an existing key")
		return genEd25519()
	})
	if err != nil || !sameKey(key, keys[0]) {
		t.Fatalf("reload: %v", err)
	}
}

func TestKeyStoreStoresPrivateKeysEncrypted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	store := keyring.NewKeyStore(pool, openKeeper(t, keeperURL(1)))
	gens := map[string]func() (crypto.Signer, error){
		"ed25519": genEd25519,
		"ecdsa":   func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
		"rsa":     func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	}
	for name, gen := range gens {
		key, err := store.LoadOrCreate(ctx, name, gen)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		var pubPEM string
		var stored []byte
		if err := pool.QueryRow(ctx, "SELECT public_pem, private_ciphertext FROM server_keys WHERE name = $1", name).Scan(&pubPEM, &stored); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored, der) || bytes.Contains(der, stored) {
			t.Errorf("%s: the stored private key contains its plaintext DER", name)
		}
		if len(stored) < len(der) {
			t.Errorf("%s: stored %d bytes, shorter than the %d-byte DER", name, len(stored), len(der))
		}
		if !strings.HasPrefix(pubPEM, "-----BEGIN PUBLIC KEY-----") {
			t.Errorf("%s: public_pem = %q", name, pubPEM)
		}
		signed, err := key.Sign(rand.Reader, make([]byte, 32), signerOpts(key))
		if err != nil || len(signed) == 0 {
			t.Errorf("%s: the loaded key cannot sign: %v", name, err)
		}
	}
}

// signerOpts returns the options key.Sign needs for a 32-byte digest.
func signerOpts(key crypto.Signer) crypto.SignerOpts {
	if _, ok := key.(ed25519.PrivateKey); ok {
		return crypto.Hash(0)
	}
	return crypto.SHA256
}

func TestKeyStoreRefusesAnotherKeeperAndSwappedRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	store := keyring.NewKeyStore(pool, openKeeper(t, keeperURL(1)))
	for _, name := range []string{"a", "b"} {
		if _, err := store.LoadOrCreate(ctx, name, genEd25519); err != nil {
			t.Fatal(err)
		}
	}

	// With another keeper the key cannot be read, and must not be replaced.
	other := keyring.NewKeyStore(pool, openKeeper(t, keeperURL(2)))
	if _, err := other.LoadOrCreate(ctx, "a", genEd25519); err == nil {
		t.Fatal("a store with another keeper loaded the key")
	}

	// b's ciphertext and public key copied into a's row: refused, not used as a.
	if _, err := pool.Exec(ctx, `UPDATE server_keys AS a SET private_ciphertext = b.private_ciphertext, public_pem = b.public_pem
		FROM server_keys AS b WHERE a.name = 'a' AND b.name = 'b'`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadOrCreate(ctx, "a", genEd25519); err == nil {
		t.Fatal("a ciphertext moved to another row was accepted")
	}

	// A public key that does not match the private key is refused.
	if _, err := store.LoadOrCreate(ctx, "c", genEd25519); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE server_keys SET public_pem = (SELECT public_pem FROM server_keys WHERE name = 'b') WHERE name = 'c'`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadOrCreate(ctx, "c", genEd25519); err == nil {
		t.Fatal("a private key with a foreign public key was accepted")
	}
}

func TestKeyStoreGenerateFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	store := keyring.NewKeyStore(pool, openKeeper(t, keeperURL(1)))
	boom := errors.New("no entropy")
	if _, err := store.LoadOrCreate(ctx, "k", func() (crypto.Signer, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("generate error: got %v", err)
	}
	if _, err := store.LoadOrCreate(ctx, "k", func() (crypto.Signer, error) { return nil, nil }); err == nil {
		t.Error("a nil key was accepted")
	}
	if _, err := store.LoadOrCreate(ctx, "", genEd25519); err == nil {
		t.Error("an empty name was accepted")
	}
	if _, err := store.LoadOrCreateCertificate(ctx, "nokey", func() ([]byte, error) { return []byte("x"), nil }); err == nil {
		t.Error("a certificate without a key was stored")
	}
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM server_keys").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("server_keys has %d rows (%v), want 0", rows, err)
	}
}

func TestKeyStoreConcurrentLoadOrCreateCertificateKeepsTheFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPostgres(t)
	keeper := openKeeper(t, keeperURL(1))
	if _, err := keyring.NewKeyStore(pool, keeper).LoadOrCreate(ctx, "ca", genEd25519); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var allCreated sync.WaitGroup
	allCreated.Add(n)
	certs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		store := keyring.NewKeyStore(pool, keeper)
		wg.Go(func() {
			certs[i], errs[i] = store.LoadOrCreateCertificate(ctx, "ca", func() ([]byte, error) {
				allCreated.Done()
				allCreated.Wait() // everybody tries to store their own
				return []byte{byte('a' + i)}, nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(certs[i], certs[0]) {
			t.Fatalf("caller %d got certificate %q, caller 0 %q", i, certs[i], certs[0])
		}
	}
	again, err := keyring.NewKeyStore(pool, keeper).LoadOrCreateCertificate(ctx, "ca", func() ([]byte, error) {
		t.Error("create called for an existing certificate")
		return []byte("z"), nil
	})
	if err != nil || !bytes.Equal(again, certs[0]) {
		t.Fatalf("reload: %q, %v", again, err)
	}
}
