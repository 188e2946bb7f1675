package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/auth"
)

func readCredentialsFile(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEnsureAdminTokenCreatesOnceThenReuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, _, _ := newIssuer(t)
	dir := filepath.Join(t.TempDir(), "config", "gantry")
	path := filepath.Join(dir, "credentials.json")

	token, created, err := auth.EnsureAdminToken(ctx, iss, path, "http://127.0.0.1:1983")
	if err != nil || !created {
		t.Fatalf("first call: created %v, %v", created, err)
	}
	p, err := iss.Verify(ctx, token)
	if err != nil || !p.IsAdmin() || p.Subject != "admin" {
		t.Fatalf("bootstrap token: %+v, %v", p, err)
	}
	if got := readCredentialsFile(t, path); got["server"] != "http://127.0.0.1:1983" || got["token"] != token || len(got) != 2 {
		t.Errorf("file holds %v", got)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
			info, err := os.Stat(p)
			if err != nil || info.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %04o", p, info.Mode().Perm(), err, want)
			}
		}
	}

	again, created, err := auth.EnsureAdminToken(ctx, iss, path, "http://127.0.0.1:1983")
	if err != nil || created || again != token {
		t.Fatalf("second call: created %v, same token %v, %v", created, again == token, err)
	}

	// The dev server moved: same token, new URL.
	moved, created, err := auth.EnsureAdminToken(ctx, iss, path, "http://127.0.0.1:2000")
	if err != nil || created || moved != token {
		t.Fatalf("moved server: created %v, same token %v, %v", created, moved == token, err)
	}
	if got := readCredentialsFile(t, path); got["server"] != "http://127.0.0.1:2000" || got["token"] != token {
		t.Errorf("after the move the file holds %v", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("config dir holds %v (%v), want only the credentials file", entries, err)
	}
}

func TestEnsureAdminTokenReplacesUnusableCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, _, _ := newIssuer(t)
	stranger, _, _ := newIssuer(t)
	strangerAdmin, err := stranger.Issue(ctx, "admin", auth.RoleAdmin, 0)
	if err != nil {
		t.Fatal(err)
	}
	ourUser, err := iss.Issue(ctx, "admin", auth.RoleUser, 0)
	if err != nil {
		t.Fatal(err)
	}
	ourExpiring, err := iss.Issue(ctx, "admin", auth.RoleAdmin, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"garbage":                "this is not JSON",
		"no token":               `{"server": "http://x"}`,
		"another server's token": `{"server": "http://x", "token": "` + strangerAdmin + `"}`,
		"not an admin":           `{"server": "http://x", "token": "` + ourUser + `"}`,
		"expired":                `{"server": "http://x", "token": "` + ourExpiring + `"}`,
	}
	for name, content := range cases {
		path := filepath.Join(t.TempDir(), "credentials.json")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		token, created, err := auth.EnsureAdminToken(ctx, iss, path, "http://127.0.0.1:1983")
		if err != nil || !created {
			t.Errorf("%s: created %v, %v", name, created, err)
			continue
		}
		if p, err := iss.Verify(ctx, token); err != nil || !p.IsAdmin() {
			t.Errorf("%s: new token %+v, %v", name, p, err)
		}
		if got := readCredentialsFile(t, path); got["token"] != token {
			t.Errorf("%s: file not rewritten", name)
		}
		if info, err := os.Stat(path); runtime.GOOS != "windows" && (err != nil || info.Mode().Perm() != 0o600) {
			t.Errorf("%s: rewritten file mode %v, %v", name, info.Mode().Perm(), err)
		}
	}
}

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
