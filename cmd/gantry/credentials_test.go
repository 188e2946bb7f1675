package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestCredentialsFileFillsServerAndToken(t *testing.T) {
	fileServer, envServer := &eventServer{}, &eventServer{}
	fileURL, envURL := startEventServer(t, fileServer), startEventServer(t, envServer)
	dir := t.TempDir()
	if err := auth.SaveCredentials(filepath.Join(dir, "credentials.json"), auth.Credentials{Server: fileURL, Token: "file-tok"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		reached   *eventServer
		wantToken string
	}{
		{"file only", nil, map[string]string{auth.ConfigDirEnv: dir}, fileServer, "Bearer file-tok"},
		{"token from the environment, server from the file", nil, map[string]string{auth.ConfigDirEnv: dir, "GANTRY_TOKEN": "env-tok"}, fileServer, "Bearer env-tok"},
		{"server from the environment, token from the file", nil, map[string]string{auth.ConfigDirEnv: dir, "GANTRY_SERVER": envURL}, envServer, "Bearer file-tok"},
		{"flags win", []string{"--server", envURL, "--token", "flag-tok"}, map[string]string{auth.ConfigDirEnv: dir}, envServer, "Bearer flag-tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []*eventServer{fileServer, envServer} {
				s.mu.Lock()
				s.req, s.header = nil, nil
				s.mu.Unlock()
			}
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), append(tt.args, "events"), env(tt.env), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			req, header := tt.reached.received()
			if req == nil {
				t.Fatal("the expected server was not called")
			}
			if got := header.Get("Authorization"); got != tt.wantToken {
				t.Errorf("Authorization %q, want %q", got, tt.wantToken)
			}
		})
	}
}

func TestBrokenCredentialsFileFailsOnlyServerCommands(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), []byte(`{"server": "http://x", "token": "secret-tok`), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{auth.ConfigDirEnv: dir}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"version"}, env(vars), &stdout, &stderr); code != 0 {
		t.Errorf("version with a broken credentials file: exit %d, stderr %q", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code := run(t.Context(), []string{"stack", "list"}, env(vars), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "credentials file") || strings.Contains(stderr.String(), "secret-tok") {
		t.Errorf("stack list with a broken credentials file: exit %d, stderr %q", code, stderr.String())
	}
}
