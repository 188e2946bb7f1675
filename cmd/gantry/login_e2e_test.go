package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestLogin(t *testing.T) {
	srv := startServer(t)
	key := srv.apiKey(t, "laptop", apikey.RoleWriter)
	keyFile := filepath.Join(t.TempDir(), "laptop.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configDir := filepath.Join(t.TempDir(), "config")
	vars := map[string]string{auth.ConfigDirEnv: configDir}
	out := srv.mustCLIEnv(t, vars, "login", "--server", srv.url+"/", "--key-file", keyFile)
	credentials := filepath.Join(configDir, "credentials.json")
	if !strings.Contains(out, "Logged in to "+srv.url+" with API key laptop") || !strings.Contains(out, "role writer") ||
		!strings.Contains(out, credentials) || strings.Contains(out, key[len(key)-apikey.SecretLength:]) {
		t.Errorf("login printed %q", out)
	}
	c, err := auth.LoadCredentials(credentials)
	if err != nil || c.Server != srv.url || c.Token != key {
		t.Fatalf("credentials %s for %s (%v), want the key for %s", c, c.Server, err, srv.url)
	}
	if info, err := os.Stat(credentials); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode %v, %v", info.Mode().Perm(), err)
	}
	// Every command now finds the server and the key.
	out = srv.mustCLIEnv(t, vars, "-o", "json", "stack", "list")
	if !json.Valid([]byte(out)) {
		t.Errorf("stack list with the stored key: %q", out)
	}

	// Refused keys are not stored.
	revoked := srv.apiKey(t, "stolen", apikey.RoleReader)
	srv.mustCLI(t, "apikey", "revoke", "stolen")
	_, secret, _ := apikey.ParseKey(key)
	for name, tc := range map[string]struct{ content, says string }{
		"revoked":      {revoked, "unauthenticated: invalid or revoked API key"},
		"wrong secret": {strings.TrimSuffix(key, secret) + strings.Repeat("0", apikey.SecretLength), "unauthenticated: invalid or revoked API key"},
		"garbage":      {"hunter2", "that is not an API key"},
		"empty":        {"\n", "no API key given"},
	} {
		file := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		_, err := srv.cliEnv(t, map[string]string{auth.ConfigDirEnv: dir}, "login", "--server", srv.url, "--key-file", file)
		if err == nil || !strings.Contains(err.Error(), tc.says) || (len(tc.content) > 10 && strings.Contains(err.Error(), tc.content)) {
			t.Errorf("%s: %v, want an error saying %q without the key", name, err, tc.says)
		}
		if _, err := os.Stat(filepath.Join(dir, "credentials.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a refused login wrote credentials (%v)", name, err)
		}
	}
	_, err = srv.cliEnv(t, map[string]string{auth.ConfigDirEnv: t.TempDir()}, "login", "--server", srv.url, "--key-file", filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("missing key file: %v", err)
	}
	_, err = srv.cliEnv(t, map[string]string{auth.ConfigDirEnv: t.TempDir()}, "login", "--server", "ftp://x", "--key-file", keyFile)
	if err == nil || !strings.Contains(err.Error(), `--server "ftp://x"`) {
		t.Errorf("bad server URL: %v", err)
	}
}

func TestReadLoginKey(t *testing.T) {
	const key = "ak_0192aabbccddeeff0011223344556677_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var prompt strings.Builder
	if got, err := readLoginKey("", strings.NewReader("  "+key+"\n"), &prompt); err != nil || got != key {
		t.Errorf("key on standard input: %q, %v", got, err)
	}
	if prompt.Len() != 0 {
		t.Errorf("prompted %q when standard input is no terminal", prompt.String())
	}
	for in, says := range map[string]string{
		"":                              "no API key given",
		"hunter2\n":                     "not an API key",
		key + strings.Repeat(" ", 5000): "not an API key",
		key + "\n" + key + "\n":         "not an API key",
	} {
		if _, err := readLoginKey("", strings.NewReader(in), &prompt); err == nil || !strings.Contains(err.Error(), says) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%.20q: %v, want %q", in, err, says)
		}
	}
}
