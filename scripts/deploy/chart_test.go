package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helm finds the helm scripts/prereqs builds into .gantry/tools/bin, or one
// on PATH.
func helm(t *testing.T) string {
	t.Helper()
	local := filepath.Join(repoRoot(t), ".gantry", "tools", "bin", "helm")
	if _, err := os.Stat(local); err == nil {
		return local
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	need(t, "helm is not installed: scripts/prereqs builds it into .gantry/tools/bin")
	return ""
}

// The chart lints strictly, renders N server replicas and the launchers,
// makes its Secret only when asked to, and its schema refuses bad values,
// naming them.
func TestHelmChart(t *testing.T) {
	h := helm(t)
	chart := filepath.Join(repoRoot(t), "scripts", "deploy", "helm", "gantry")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run(t, ctx, nil, "", h, "lint", "--strict", chart)

	out := run(t, ctx, nil, "", h, "template", "rel", chart, "--set", "server.replicas=3", "--set", "launcher.replicas=4")
	for _, want := range []string{
		"kind: Deployment\nmetadata:\n  name: rel-gantry-server", "replicas: 3",
		"kind: Deployment\nmetadata:\n  name: rel-gantry-launcher", "replicas: 4",
		"kind: Service", "kind: ConfigMap", "path: /readiness", `"--public-url", "http://rel-gantry-server:1983"`,
		"name: gantry-launcher\n                  key: GANTRY_TOKEN",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("helm template lacks %q", want)
		}
	}
	if strings.Contains(out, "kind: Secret") {
		t.Error("the chart made a Secret without secrets.create")
	}
	out = run(t, ctx, nil, "", h, "template", "rel", chart, "--set", "secrets.create=true",
		"--set", "secrets.values.databaseURL=postgres://gantry:pw@db:5432/gantry",
		"--set", "secrets.values.natsURL=nats://gantry:pw@nats:4222",
		"--set", "secrets.values.secretsURL=base64key://x",
		"--set", "secrets.values.signingKey=PEM", "--set", "launcher.enabled=false")
	if !strings.Contains(out, "kind: Secret") || !strings.Contains(out, `GANTRY_DATABASE_URL: "postgres://gantry:pw@db:5432/gantry"`) {
		t.Errorf("secrets.create made no Secret with the database URL:\n%s", out)
	}
	if strings.Contains(out, "rel-gantry-launcher") {
		t.Error("launcher.enabled=false still renders the launchers")
	}

	for _, bad := range []struct{ set, names string }{
		{"server.replicas=-1", "/server/replicas"},
		{"server.replicas=two", "/server/replicas"},
		{"server.blobURL=ftp://bucket", "/server/blobURL"},
		{"launcher.toolsDir=/usr/bin", "/launcher/toolsDir"},
		{"server.logLevel=loud", "/server/logLevel"},
		{"server.replica=2", "replica"},
		{"secrets.create=true", "secrets.values.databaseURL is required"},
	} {
		cmds := [][]string{{"template", "rel", chart}}
		if !strings.Contains(bad.names, "required") { // lint does not run required
			cmds = append(cmds, []string{"lint", "--strict", chart})
		}
		for _, cmd := range cmds {
			out, err := try(ctx, nil, "", h, append(cmd, "--set", bad.set)...)
			if err == nil {
				t.Errorf("helm %s --set %s passed", cmd[0], bad.set)
			} else if !strings.Contains(out, bad.names) {
				t.Errorf("helm %s --set %s failed without naming %s:\n%s", cmd[0], bad.set, bad.names, out)
			}
		}
	}
}
