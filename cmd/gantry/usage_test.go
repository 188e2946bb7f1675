package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestArgNames(t *testing.T) {
	tests := []struct {
		use  string
		want []string
	}{
		{"trigger STACK", []string{"STACK"}},
		{"task STACK -- COMMAND...", []string{"STACK", "COMMAND..."}},
		{"create NAME --csr FILE", []string{"NAME"}},
		{"drain POOL WORKER", []string{"POOL", "WORKER"}},
		{"rebuild [NAME...]", []string{"[NAME...]"}},
		{"list", nil},
	}
	for _, tt := range tests {
		if got := argNames(tt.use); !slices.Equal(got, tt.want) {
			t.Errorf("argNames(%q) = %q, want %q", tt.use, got, tt.want)
		}
	}
}

// Mistakes on the command line fail with a message that says what to fix;
// nothing reaches a server (none runs here).
func TestUsageMistakesFailAndSayWhatToFix(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "triger", "demo"}, `gantry: unknown command "triger" for "gantry run": did you mean "trigger"? (gantry run --help lists the commands)`},
		{[]string{"stack", "env", "sett"}, `gantry: unknown command "sett" for "gantry stack env": did you mean "set"?`},
		{[]string{"nope"}, `gantry: unknown command "nope" for "gantry"`},
		{[]string{"run", "trigger"}, "gantry: run trigger: missing STACK (usage: gantry run trigger STACK [flags])"},
		{[]string{"pool", "drain", "p"}, "gantry: pool drain: missing WORKER (usage: gantry pool drain POOL WORKER [flags])"},
		{[]string{"task", "demo"}, "gantry: task: missing COMMAND... (usage: gantry task STACK -- COMMAND... [flags])"},
		{[]string{"run", "show", "run_a", "run_b"}, `gantry: run show: unexpected argument "run_b" (usage: gantry run show RUN [flags])`},
		{[]string{"events", "extra"}, `gantry: events: unexpected argument "extra" (usage: gantry events [flags])`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tt.args, env(nil), &stdout, &stderr)
		if code != 1 || !strings.HasPrefix(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("gantry %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(tt.args, " "), code, stderr.String(), tt.want)
		}
	}
	// A group without a subcommand shows its help and succeeds.
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"run"}, env(nil), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Available Commands:") {
		t.Errorf("gantry run: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestVersionFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, env(nil), &stdout, &stderr); code != 0 ||
		!strings.HasPrefix(stdout.String(), "gantry ") || strings.Count(stdout.String(), "\n") != 1 || !strings.Contains(stdout.String(), "go1.") {
		t.Errorf("gantry --version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	v := versionInfo{Version: "v1.2.3", Revision: "abc123", Modified: true, Go: "go1.26.8"}
	if got := v.line(); got != "v1.2.3 (revision abc123, modified, go1.26.8)" {
		t.Errorf("line() = %q", got)
	}
}
