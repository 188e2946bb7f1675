package keyring_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/services/platform/keyring"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// The Vault driver reads its environment once per process: every test
// points it at the same closed port.
var (
	vaultOnce     sync.Once
	vaultAddrOnce string
)

// offlineCloudEnv gives every cloud SDK credentials of its own kind that
// need no network to load, and points Vault at a closed loopback port, so
// that nothing a test does leaves the machine. (The AWS SDK would ask the
// EC2 metadata service, Google's an OAuth server, Azure's its managed
// identity endpoint: none is reachable from here.)
func offlineCloudEnv(t *testing.T) (vaultAddr string) {
	t.Helper()
	// gcpkms's driver keeps one gRPC client for the process, connecting in
	// the background as soon as it exists; it is only ever given credentials
	// that fail to load here, so that it never starts.
	missing := filepath.Join(t.TempDir(), "no-service-account.json")
	vaultOnce.Do(func() { vaultAddrOnce = closedAddr(t) })
	vaultAddr = vaultAddrOnce
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAGANTRYTEST", "AWS_SECRET_ACCESS_KEY": "gantry-test-secret", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"GOOGLE_APPLICATION_CREDENTIALS": missing,
		"VAULT_SERVER_URL":               "http://" + vaultAddr, "VAULT_SERVER_TOKEN": "gantry-test-token",
	} {
		t.Setenv(k, v)
	}
	return vaultAddr
}

// Each KMS Gantry links opens from its URL without reaching the KMS (a
// server's start then checks it with a real encryption, see CheckKeeper).
func TestKMSKeepersOpenFromTheirURLs(t *testing.T) {
	offlineCloudEnv(t)
	ctx := context.Background()
	for scheme, u := range map[string]string{
		"awskms":        "awskms://alias/gantry?region=eu-west-1",
		"azurekeyvault": "azurekeyvault://gantry-test.vault.azure.net/keys/state",
		"hashivault":    "hashivault://gantry",
	} {
		k, err := keyring.OpenKeeper(ctx, u)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if k.Scheme() != scheme {
			t.Errorf("%s: scheme %q", u, k.Scheme())
		}
		if err := k.Close(); err != nil {
			t.Errorf("%s: close: %v", u, err)
		}
	}
	got := strings.Join(keyring.KeeperSchemes(), " ")
	if got != "awskms azurekeyvault base64key gcpkms hashivault rsakey" {
		t.Errorf("KeeperSchemes = %s", got)
	}
}

// A KMS that cannot be reached, or a URL it cannot take, gives an error
// that says which keeper failed and why.
func TestKMSKeepersFailClearly(t *testing.T) {
	vaultAddr := offlineCloudEnv(t)
	ctx := context.Background()
	kmsAddr := closedAddr(t)
	for _, c := range []struct {
		url  string
		want []string // in the error of OpenKeeper, or else of Encrypt
	}{
		{"awskms://alias/gantry?region=us-east-1&endpoint=http://" + kmsAddr, []string{"keeper awskms: encrypt", kmsAddr, "connection refused"}},
		{"hashivault://gantry", []string{"keeper hashivault: encrypt", vaultAddr, "connection refused"}},
		{"awskms://alias/gantry?regoin=us-east-1", []string{"open keeper awskms", `unknown query parameter "regoin"`}},
		{"gcpkms://projects/gantry-test/locations/global/keyRings/gantry/cryptoKeys/state", []string{"open keeper gcpkms", "GOOGLE_APPLICATION_CREDENTIALS", "no-service-account.json"}},
		{"azurekeyvault://gantry-test.vault.azure.net/keys/state?algo=RSA1_5", []string{"open keeper azurekeyvault", `invalid query parameter "algo"`}},
	} {
		k, err := keyring.OpenKeeper(ctx, c.url)
		if err == nil {
			_, err = k.Encrypt(ctx, []byte("x"))
			_ = k.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", c.url)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.url, err, w)
			}
		}
	}
}
