package main

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		main() // the end-to-end tests run the real command line through the test binary
	}
	testenv.MainNoLeaks(m)
}

func TestGlobalFlagsResolveAgainstEnvironment(t *testing.T) {
	envServer, flagServer := &eventServer{}, &eventServer{}
	envURL, flagURL := startEventServer(t, envServer), startEventServer(t, flagServer)
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		reached   *eventServer
		wantToken string
	}{
		{"environment", nil, map[string]string{"GANTRY_SERVER": envURL, "GANTRY_TOKEN": "env-tok"}, envServer, "Bearer env-tok"},
		{"flags win", []string{"--server", flagURL, "--token", "flag-tok"}, map[string]string{"GANTRY_SERVER": envURL, "GANTRY_TOKEN": "env-tok"}, flagServer, "Bearer flag-tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []*eventServer{envServer, flagServer} {
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

func TestOutputFlagIsValidated(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-o", "yaml", "version"}, env(nil), &stdout, &stderr)
	if code != 1 || stderr.String() != "gantry: --output \"yaml\": use table or json\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestBadServerURL(t *testing.T) {
	for _, server := range []string{"ftp://x", "127.0.0.1:1983", "http://", "http://h/?q=1"} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"events", "--server", server}, env(nil), &stdout, &stderr)
		if code != 1 || !strings.HasPrefix(stderr.String(), "gantry: --server ") {
			t.Errorf("--server %q: exit %d, stderr %q", server, code, stderr.String())
		}
	}
}

func TestUnknownCommandFails(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"nope"}, env(nil), &stdout, &stderr); code != 1 || !strings.HasPrefix(stderr.String(), "gantry: unknown command") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a: first\nb: second\n"); got != "a: first; b: second" {
		t.Errorf("oneLine = %q", got)
	}
}

func TestVersion(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "v1.2.3"},
		Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}},
	}
	v := buildVersion(info)
	want := versionInfo{Version: "v1.2.3", Revision: "abc123", Time: "2026-01-02T03:04:05Z", Modified: true, Go: "go1.26.8"}
	if v != want {
		t.Fatalf("buildVersion = %+v, want %+v", v, want)
	}
	var table bytes.Buffer
	if err := writeVersion(&table, outputTable, v); err != nil {
		t.Fatal(err)
	}
	wantTable := "version      v1.2.3\nrevision     abc123 (modified)\ncommit time  2026-01-02T03:04:05Z\ngo           go1.26.8\n"
	if table.String() != wantTable {
		t.Errorf("table\n%s\nwant\n%s", table.String(), wantTable)
	}
	var js bytes.Buffer
	if err := writeVersion(&js, outputJSON, v); err != nil {
		t.Fatal(err)
	}
	var got versionInfo
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || got != want {
		t.Errorf("json %s decodes to %+v (%v), want %+v", js.String(), got, err, want)
	}
}

func TestServerFlagDefault(t *testing.T) {
	root := newRootCommand(env(nil))
	if got := root.PersistentFlags().Lookup("server").DefValue; got != "http://127.0.0.1:1983" {
		t.Errorf("--server defaults to %q", got)
	}
}
