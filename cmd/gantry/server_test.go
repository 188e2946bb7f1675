package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestServerNeedsASecretsURL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"server"}, env(map[string]string{
		"GANTRY_DATABASE_URL": "postgres://gantry@db.invalid/gantry", "GANTRY_NATS_URL": "nats://nats.invalid:4222",
	}), &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "gantry: GANTRY_SECRETS_URL is required") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestDefaultPublicURL(t *testing.T) {
	for listen, want := range map[string]string{
		":1983":           "http://localhost:1983",
		"0.0.0.0:1983":    "http://localhost:1983",
		"[::]:1983":       "http://localhost:1983",
		"127.0.0.1:1983":  "http://127.0.0.1:1983",
		"gantry.lan:8080": "http://gantry.lan:8080",
		"[::1]:1983":      "http://[::1]:1983",
	} {
		if got := defaultPublicURL(listen); got != want {
			t.Errorf("defaultPublicURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestServerNeedsABlobURL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"server"}, env(map[string]string{
		"GANTRY_DATABASE_URL": "postgres://gantry@db.invalid/gantry", "GANTRY_NATS_URL": "nats://nats.invalid:4222",
		"GANTRY_SECRETS_URL": "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=",
	}), &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "gantry: server needs GANTRY_BLOB_URL") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// A bad instrumentation address is refused, naming where it came from,
// before anything is reached.
func TestServerRefusesABadInstrumentationAddress(t *testing.T) {
	vars := map[string]string{
		"GANTRY_DATABASE_URL": "postgres://gantry@db.invalid/gantry", "GANTRY_NATS_URL": "nats://nats.invalid:4222",
		"GANTRY_SECRETS_URL": "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=", "GANTRY_BLOB_URL": "mem://",
	}
	tests := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"server", "--instrumentation-listen", "8080"}, "", `gantry: --instrumentation-listen "8080": want host:port`},
		{[]string{"server"}, "localhost", `gantry: GANTRY_INSTRUMENTATION_LISTEN: "localhost" is not host:port`},
		{[]string{"dev", "--instrumentation-listen", "nope"}, "", `gantry: --instrumentation-listen "nope": want host:port`},
	}
	for _, tt := range tests {
		vars["GANTRY_INSTRUMENTATION_LISTEN"] = tt.env
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tt.args, env(vars), &stdout, &stderr)
		if code != 1 || !strings.HasPrefix(stderr.String(), tt.want) {
			t.Errorf("%v (env %q): exit %d, stderr %q, want %q", tt.args, tt.env, code, stderr.String(), tt.want)
		}
	}
}

// A bad GANTRY_NATS_REPLICAS stops the server at start, naming it.
func TestServerRefusesBadStreamReplicas(t *testing.T) {
	vars := map[string]string{
		"GANTRY_DATABASE_URL": "postgres://gantry@db.invalid/gantry", "GANTRY_NATS_URL": "nats://nats.invalid:4222",
		"GANTRY_SECRETS_URL": "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=", "GANTRY_BLOB_URL": "mem://",
		"GANTRY_NATS_REPLICAS": "7",
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"server"}, env(vars), &stdout, &stderr)
	if code != 1 || stderr.String() != "gantry: GANTRY_NATS_REPLICAS: \"7\" must be from 1 to 5\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
