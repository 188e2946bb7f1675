package auth_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestLoadCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := auth.LoadCredentials(filepath.Join(dir, "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "c.json")
	want := auth.Credentials{Server: "https://gantry.example.com", Token: "tok"}
	if err := auth.SaveCredentials(path, want); err != nil {
		t.Fatal(err)
	}
	if got, err := auth.LoadCredentials(path); err != nil || got != want {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	if err := auth.SaveCredentials(path, auth.Credentials{Server: "x"}); err == nil {
		t.Error("saved credentials without a token")
	}
	for content, says := range map[string]string{"SECRETTOKEN": "not a JSON object", `{"token": "SECRETTOKEN"}`: "missing server", `{}`: "missing server and token"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := auth.LoadCredentials(path)
		if err == nil || !strings.Contains(err.Error(), says) || strings.Contains(err.Error(), "SECRETTOKEN") {
			t.Errorf("%s: %v, want an error saying %q without the token", content, err, says)
		}
	}
	if got := (auth.Credentials{Server: "https://x", Token: "SECRETTOKEN"}).String(); strings.Contains(got, "SECRETTOKEN") {
		t.Errorf("String() shows the token: %s", got)
	}
}

func TestSaveAPIKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "etc", "gantry")
	path := filepath.Join(dir, "admin.key")
	for _, key := range []string{"ak_1_first", "ak_2_second"} { // the second replaces the first
		if err := auth.SaveAPIKey(path, key); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != key+"\n" {
			t.Fatalf("file holds %q, %v; want %q", got, err, key+"\n")
		}
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
		if info, err := os.Stat(p); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %04o", p, info.Mode().Perm(), err, want)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("the directory holds %v (%v), want only the key file", entries, err)
	}
	if err := auth.SaveAPIKey(path, " "); err == nil {
		t.Error("saved an empty key")
	}
}

// TestDefaultCredentialsPath changes the environment, so it cannot run in
// parallel.
func TestDefaultCredentialsPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(auth.ConfigDirEnv, dir)
	if got, err := auth.DefaultCredentialsPath(); err != nil || got != filepath.Join(dir, "credentials.json") {
		t.Errorf("with %s: %q, %v", auth.ConfigDirEnv, got, err)
	}
	t.Setenv(auth.ConfigDirEnv, "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "xdg"))
	t.Setenv("AppData", filepath.Join(home, "appdata"))
	base, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auth.DefaultCredentialsPath(); err != nil || got != filepath.Join(base, "gantry", "credentials.json") {
		t.Errorf("default: %q, %v", got, err)
	}
}
