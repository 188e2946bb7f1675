package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/platform/tracing"
	"github.com/gantryhq/gantry/services/server/api"
	"github.com/gantryhq/gantry/services/server/instrumentation"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md's generated table from the settings table")

// The docs whose tables of variables are generated, and the sections each
// must have.
var generatedDocs = map[string][]string{
	"../../docs/configuration.md": {"all"},
	"../../docs/workers.md":       {"launcher", "docker-executor"},
}

// The tables of variables in the docs are the settings table's:
// `go test ./cmd/gantry -run TestConfigurationDoc -update` rewrites them.
func TestConfigurationDoc(t *testing.T) {
	for path, sections := range generatedDocs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, found, err := regenerateSettings(string(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, s := range sections {
			if !slices.Contains(found, s) {
				t.Errorf("%s has no generated section %q (%s … %s)", path, s, settings.DocBegin(s), settings.DocEnd)
			}
		}
		if doc == string(raw) {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s differs from the settings table (services/platform/settings/table.go); regenerate it with\n"+
			"\tgo test ./cmd/gantry -run TestConfigurationDoc -update", path)
	}
}

// regenerateSettings returns doc with each generated section made anew
// from the settings table, and the sections it has.
func regenerateSettings(doc string) (string, []string, error) {
	var out strings.Builder
	var found []string
	lines := strings.SplitAfter(doc, "\n")
	for i := 0; i < len(lines); i++ {
		out.WriteString(lines[i])
		name, ok := settings.ParseDocBegin(strings.TrimRight(lines[i], "\n"))
		if !ok {
			continue
		}
		vars, ok := settings.Section(name)
		if !ok {
			return "", nil, fmt.Errorf("unknown generated section %q", name)
		}
		found = append(found, name)
		end := i + 1
		for end < len(lines) && strings.TrimRight(lines[end], "\n") != settings.DocEnd {
			end++
		}
		if end == len(lines) {
			return "", nil, fmt.Errorf("section %q has no %s", name, settings.DocEnd)
		}
		out.WriteString("\n" + settings.Markdown(vars) + "\n")
		i = end - 1
	}
	return out.String(), found, nil
}

// Every command the table names exists, and every command that reads a
// variable through the table is named by it.
func TestSettingsTableNamesRealCommands(t *testing.T) {
	root := newRootCommand(env(nil))
	paths := map[string]bool{settings.CLI: true, settings.Tests: true, settings.Benchmarks: true}
	for _, c := range allSubcommands(root) {
		paths[strings.TrimPrefix(c.CommandPath(), "gantry ")] = true
	}
	for _, v := range settings.All() {
		for _, c := range v.Commands {
			if !paths[c] {
				t.Errorf("%s: the table says %q reads it: no such command", v.Name, c)
			}
		}
	}
	for _, name := range []string{"server", "dev", "launcher", "drain", "projector", "projector rebuild", "scheduler", "migrate", "runner-image"} {
		if len(settings.For(name)) == 0 {
			t.Errorf("%s reads no variable of the table", name)
		}
	}
}

// What the table accepts is what the code that opens the value accepts.
func TestSettingsTableAcceptsWhatTheOpenersDo(t *testing.T) {
	for _, c := range []struct {
		v    *settings.Var
		want []string
	}{
		{settings.BlobURL, objstore.Schemes()},
		{settings.SecretsURL, keyring.KeeperSchemes()},
		{settings.OTLPProtocol, []string{tracing.ProtocolHTTP, tracing.ProtocolGRPC}},
	} {
		got, want := c.v.Kind.Values(), slices.Clone(c.want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the table accepts %v, the code %v", c.v.Name, got, want)
		}
	}
}

// The defaults the table documents are the ones the code applies.
func TestSettingsTableDefaultsAreTheCodes(t *testing.T) {
	for _, c := range []struct {
		v         *settings.Var
		documents string
	}{
		{settings.CalloutUserTTL, bus.DefaultCalloutUserTTL.String()},
		{settings.CalloutAccount, bus.DefaultCalloutAccount},
		{settings.Server, "http://" + api.DefaultListen},
		{settings.InstrumentationListen, "`" + instrumentation.DefaultListen + "`"},
		{settings.InstrumentationListen, "`" + instrumentation.DefaultDevListen + "`"},
	} {
		got := c.v.Default + " " + c.v.DefaultDoc
		if d, err := time.ParseDuration(c.v.Default); err == nil {
			got = d.String()
		}
		if !strings.Contains(got, c.documents) {
			t.Errorf("%s: the table says %q, the code %q", c.v.Name, got, c.documents)
		}
	}
}

// Each command's --help lists the variables it reads, with default and
// example; a command that calls the API lists the CLI's.
func TestHelpListsTheEnvironment(t *testing.T) {
	root := newRootCommand(env(nil))
	for _, args := range [][]string{{"server"}, {"dev"}, {"launcher"}, {"drain"}, {"projector"}, {"projector", "rebuild"},
		{"scheduler"}, {"migrate"}, {"runner-image"}, {"stack", "list"}, {"login"}} {
		cmd, _, err := root.Find(args)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append(args, "--help"), env(nil), &stdout, &stderr); code != 0 {
			t.Fatalf("%v --help: exit %d, %s", args, code, stderr.String())
		}
		help := stdout.String()
		vars := environmentOf(cmd)
		if len(vars) == 0 || !strings.Contains(help, "Environment (docs/configuration.md):") {
			t.Errorf("%v --help has no environment section:\n%s", args, help)
		}
		for _, v := range vars {
			if !strings.Contains(help, "\n  "+v.Name) || !strings.Contains(help, "example: "+v.Example) {
				t.Errorf("%v --help does not list %s with its example", args, v.Name)
			}
			if v.Default != "" && v.DefaultDoc == "" && !strings.Contains(help, "default: "+v.Default) {
				t.Errorf("%v --help does not give %s's default %s", args, v.Name, v.Default)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	run(t.Context(), []string{"server", "--help"}, env(nil), &stdout, &stderr)
	for _, name := range []string{"GANTRY_DATABASE_URL", "GANTRY_NATS_CALLOUT_USER_TTL", "OTEL_EXPORTER_OTLP_ENDPOINT", "GANTRY_LOG_LEVEL"} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("server --help does not list %s", name)
		}
	}
	if strings.Contains(stdout.String(), "GANTRY_LAUNCHER_RUN_TIMEOUT") || strings.Contains(stdout.String(), "GANTRY_LAUNCHER_SECRETS_FD") {
		t.Error("server --help lists a launcher's variables")
	}
}

// A bad value stops the real binary at start, before it reaches anything,
// with one line that names the variable and the problem, and exit status 1.
func TestBadSettingStopsTheBinary(t *testing.T) {
	nowhere := "postgres://gantry@127.0.0.1:1/gantry" // nothing is reached: the check comes first
	base := []string{"GANTRY_DATABASE_URL=" + nowhere, "GANTRY_NATS_URL=nats://127.0.0.1:1",
		"GANTRY_SECRETS_URL=base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=", "GANTRY_BLOB_URL=mem://"}
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"server"}, []string{"GANTRY_NATS_CALLOUT_USER_TTL=soon"}, `gantry: GANTRY_NATS_CALLOUT_USER_TTL: "soon" is not a duration such as 7m or 1h30m`},
		{[]string{"server"}, []string{"GANTRY_BLOB_URL=ftp://bucket"}, `gantry: GANTRY_BLOB_URL: the value has scheme "ftp": want azblob, file, gs, mem or s3`},
		{[]string{"server"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL=thrift"}, `gantry: OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" is not one of http/protobuf, grpc`},
		{[]string{"dev", "--data-dir", t.TempDir()}, []string{"GANTRY_LOG_LEVEL=loud"}, `gantry: GANTRY_LOG_LEVEL: "loud" is not one of debug, info, warn, error`},
		{[]string{"scheduler"}, []string{"GANTRY_DATABASE_URL=mysql://root:hunter2@db/gantry"}, `gantry: GANTRY_DATABASE_URL: the value has scheme "mysql": want postgres or postgresql`},
		{[]string{"launcher"}, []string{"GANTRY_LAUNCHER_RUN_TIMEOUT=-5m"}, `gantry: GANTRY_LAUNCHER_RUN_TIMEOUT: "-5m" must be positive`},
		{[]string{"launcher"}, []string{"GANTRY_LAUNCHER_EXECUTOR=vm"}, `gantry: GANTRY_LAUNCHER_EXECUTOR: "vm" is not one of docker, process`},
		{[]string{"stack", "list"}, []string{"GANTRY_SERVER=ftp://gantry"}, `gantry: GANTRY_SERVER: "ftp://gantry" has scheme "ftp": want http or https`},
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = append(append(os.Environ(), execEnv+"=1", "GANTRY_CONFIG_DIR="+filepath.Join(t.TempDir(), "none")), append(slices.Clone(base), c.env...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("%v %v: %v, want exit status 1", c.args, c.env, err)
		}
		if got := stderr.String(); got != c.want+"\n" {
			t.Errorf("%v %v: stderr %q, want the one line %q", c.args, c.env, got, c.want)
		}
		if strings.Contains(stderr.String(), "hunter2") || stdout.Len() != 0 {
			t.Errorf("%v %v: stdout %q, stderr %q", c.args, c.env, stdout.String(), stderr.String())
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%v %v: took %v to stop", c.args, c.env, d)
		}
	}
}
