package objstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	// No attributes sidecar unless the URL asks for one.
	if _, err := os.Stat(filepath.Join(dir, "a", "b.attrs")); !os.IsNotExist(err) {
		t.Errorf("b.attrs: %v, want no such file", err)
	}
	withSidecars, err := objstore.Open(ctx, u+"?metadata=")
	if err != nil {
		t.Fatal(err)
	}
	defer withSidecars.Close()
	if err := withSidecars.WriteAll(ctx, "a/c", []byte("state"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "c.attrs")); err != nil {
		t.Errorf("with metadata= in the URL: %v", err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{"", "must be a URL such as"},
		{"not a url", "must be a URL such as"},
		{"nosuchscheme://x", `scheme "nosuchscheme" is not supported (supported: azblob, file, gs, mem, s3)`},
		{"file:///nonexistent/gantry/blobs", "/nonexistent/gantry/blobs"},
		{"s3://", "names no bucket (s3://<bucket>)"},
		{"s3://gantry?use_path_style=maybe", `invalid value for "use_path_style"`},
		{"s3://gantry?regoin=eu-west-1", `unknown query parameter "regoin"`},
		{"gs:///state", "names no bucket (gs://<bucket>)"},
	} {
		b, err := objstore.Open(ctx, c.url)
		if err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): %v, want it to say %q", c.url, err, c.want)
		}
	}
	b, err := objstore.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// Google Cloud Storage and Azure Blob Storage cannot be reached from the
// tests: their URLs open with credentials from the environment (made up
// here), as far as that goes without the network.
func TestCloudBucketURLsOpenWithoutTheNetwork(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "gantry-test", "private_key_id": "1", "client_id": "1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		"client_email": "gantry@gantry-test.iam.gserviceaccount.com",
		"token_uri":    "http://127.0.0.1:1/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", saFile)
	t.Setenv("AZURE_STORAGE_ACCOUNT", "gantrytest")
	t.Setenv("AZURE_STORAGE_KEY", base64.StdEncoding.EncodeToString(make([]byte, 64)))
	ctx := context.Background()
	for _, u := range []string{"gs://gantry-state", "azblob://gantry-state", "azblob://gantry-state?protocol=https&domain=blob.core.windows.net"} {
		b, err := objstore.OpenUnchecked(ctx, u)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if err := b.Close(); err != nil {
			t.Errorf("%s: close: %v", u, err)
		}
	}
	if _, err := objstore.OpenUnchecked(ctx, "azblob://gantry-state?nosuch=1"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("azblob with an unknown parameter: %v", err)
	}
}
