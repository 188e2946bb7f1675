package keyring_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
)

func TestDevKeeperURLIsStableAndPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	first, err := keyring.DevKeeperURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, keyring.DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	second, err := keyring.DevKeeperURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("a second call returned another key")
	}

	// What the first start encrypted, the second start reads.
	ctx := context.Background()
	ct, err := openKeeper(t, first).Encrypt(ctx, []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openKeeper(t, second).Decrypt(ctx, ct); err != nil || string(got) != "kept" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}

	other, err := keyring.DevKeeperURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Fatal("two data directories got the same key")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("data dir holds %v (%v), want only the key file", entries, err)
	}
}

func TestDevKeeperURLConcurrentFirstStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	urls := make([]string, 8)
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i := range urls {
		wg.Go(func() { urls[i], errs[i] = keyring.DevKeeperURL(dir) })
	}
	wg.Wait()
	for i := range urls {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if urls[i] != urls[0] {
			t.Fatal("concurrent first starts got different keys")
		}
	}
}

func TestDevKeeperURLRefusesBadKeyFiles(t *testing.T) {
	t.Parallel()
	write := func(content string, mode os.FileMode) string {
		dir := t.TempDir()
		path := filepath.Join(dir, keyring.DevKeyFile)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if _, err := keyring.DevKeeperURL(write("bm90IDMyIGJ5dGVz\n", 0o600)); err == nil {
		t.Error("a key of the wrong size was accepted")
	}
	if _, err := keyring.DevKeeperURL(write("not base64!\n", 0o600)); err == nil {
		t.Error("a key that is not base64 was accepted")
	}
	if runtime.GOOS != "windows" {
		dir := t.TempDir()
		good, err := keyring.DevKeeperURL(dir)
		if err != nil || good == "" {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, keyring.DevKeyFile), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.DevKeeperURL(dir); err == nil {
			t.Error("a world-readable key file was accepted")
		}
	}
}

// docs/configuration.md tells how to give a server gantry dev's key as a
// base64key:// URL: the command, run as written, gives the same keeper.
func TestDevKeyFileAsBase64KeyURLAsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, `export GANTRY_SECRETS_URL="base64key://`) {
			command = line
		}
	}
	if command == "" {
		t.Fatal("docs/configuration.md shows no base64key:// URL made from the dev key file")
	}
	ctx := context.Background()
	for range 8 { // keys with and without + and / in their base64
		work := t.TempDir()
		devURL, err := keyring.DevKeeperURL(filepath.Join(work, ".gantry"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", command+`printf %s "$GANTRY_SECRETS_URL"`)
		cmd.Dir = work
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", command, err)
		}
		ct, err := openKeeper(t, devURL).Encrypt(ctx, []byte("from gantry dev"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := openKeeper(t, string(out)).Decrypt(ctx, ct); err != nil || string(got) != "from gantry dev" {
			t.Fatalf("the documented URL does not open gantry dev's key: %q, %v", got, err)
		}
	}
}

func TestDevSigningKeyIsStableAndPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	first, err := keyring.DevSigningKeyPEM(dir)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(first)
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("not one PEM private key:\n%s", first)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := key.(ed25519.PrivateKey); !ok {
		t.Fatalf("a %T, want an Ed25519 key", key)
	}
	path := filepath.Join(dir, keyring.DevSigningKeyFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	second, err := keyring.DevSigningKeyPEM(dir)
	if err != nil || !bytes.Equal(first, second) {
		t.Fatalf("a second call returned another key (%v)", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.DevSigningKeyPEM(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key others can read: %v", err)
	}
}

func TestDevSigningKeyConcurrentStartersAgree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := make([][]byte, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = keyring.DevSigningKeyPEM(dir) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("starter %d: %v, same key %v", i, errs[i], bytes.Equal(keys[i], keys[0]))
		}
	}
}
