package deploy_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The systemd units verify with systemd-analyze where it is installed (with
// ExecStart pointed at a built gantry, since verify checks the binary), and
// parse as unit files with the settings the docs promise everywhere.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "scripts", "deploy", "systemd")
	units := []string{"gantry-server.service", "gantry-launcher.service"}
	for _, u := range units {
		sections := parseUnit(t, filepath.Join(dir, u))
		svc := sections["Service"]
		for _, key := range []string{"EnvironmentFile", "ExecStart", "Restart", "NoNewPrivileges", "ProtectSystem", "PrivateDevices", "RestrictAddressFamilies"} {
			if len(svc[key]) == 0 {
				t.Errorf("%s: [Service] has no %s", u, key)
			}
		}
		if got := sections["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
			t.Errorf("%s: WantedBy = %v", u, got)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the units were only parsed")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	gantry := filepath.Join(tmp, "gantry")
	run(t, ctx, os.Environ(), repoRoot(t), "go", "build", "-o", gantry, "./cmd/gantry")
	var paths []string
	for _, u := range append(units, "bad.service") {
		src := u
		if u == "bad.service" {
			src = units[0]
		}
		data, err := os.ReadFile(filepath.Join(dir, src))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "/usr/local/bin/gantry", gantry)
		if u == "bad.service" {
			// verify must notice a mistyped setting, or this test proves nothing.
			text = strings.Replace(text, "ProtectSystem=", "ProtectSystm=", 1)
		}
		p := filepath.Join(tmp, u)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// systemd-analyze verify reports unknown settings on its standard
	// error without failing: any output is a finding.
	if out, err := verify(ctx, analyze, paths[:2]...); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, _ := verify(ctx, analyze, paths[2]); !strings.Contains(out, "ProtectSystm") {
		t.Errorf("systemd-analyze verify did not report a mistyped setting: %q", out)
	}
}

// verify runs systemd-analyze verify and returns all it printed.
func verify(ctx context.Context, analyze string, paths ...string) (string, error) {
	out, err := exec.CommandContext(ctx, analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	return string(out), err
}

// parseUnit reads a unit file: sections of keys, each with its values in
// order, after joining continued lines. A line that is neither a section,
// a comment nor key=value fails the test.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := map[string]map[string][]string{}
	var section, pending string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := pending + strings.TrimSpace(sc.Text())
		pending = ""
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			sections[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(key) == "" {
				t.Fatalf("%s:%d: not a unit file line: %q", path, n, line)
			}
			sections[section][strings.TrimSpace(key)] = append(sections[section][strings.TrimSpace(key)], strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}
