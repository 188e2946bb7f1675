// Package deploy_test checks the deployment files of scripts/deploy on the
// real Docker engine, with helm and systemd-analyze: the images build, the
// compose project runs runs through each server replica, the Helm chart
// renders and its schema refuses bad values, the systemd units verify.
package deploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the checkout this test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// need stops the test when a tool it needs is missing: a failure under
// CI=true (the suite must run there), a skip elsewhere.
func need(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (scripts/prereqs installs it)", what)
	}
	t.Skip(what)
}

// requireDocker checks for the engine and docker-compose.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		need(t, "the docker CLI is not installed")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		need(t, "the Docker engine does not answer: "+strings.TrimSpace(string(out)))
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		need(t, "docker-compose is not installed (Debian: apt-get install docker-compose)")
	}
}

// run runs a command, failing the test with its output when it fails.
func run(t *testing.T, ctx context.Context, env []string, dir, name string, args ...string) string {
	t.Helper()
	out, err := try(ctx, env, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// try runs a command and returns its standard output, followed by its
// standard error when it fails.
func try(ctx context.Context, env []string, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env, dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

// poolKey makes the pool's private key (base64 of its PEM, as
// GANTRY_POOL_PRIVATE_KEY wants it) and its CSR file.
func poolKey(t *testing.T, dir string) (keyB64, csrFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "builders"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrFile = filepath.Join(dir, "pool.csr")
	if err := os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o600); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), csrFile
}

// TestComposeRunsThroughEachServer builds the images, brings the compose
// project up (PostgreSQL, NATS, two servers, two Docker launchers) under a
// project name of its own with every port on a free port of 127.0.0.1, and
// takes a tracked run with managed state to FINISHED through each server
// replica, real terraform in the runner image. It removes the containers,
// networks and volumes it made; the images stay, tagged gantry-deploy/*:local.
func TestComposeRunsThroughEachServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs the compose project")
	}
	requireDocker(t)
	tool, err := exec.LookPath("terraform")
	if err != nil {
		if tool, err = exec.LookPath("tofu"); err != nil {
			need(t, "neither terraform nor tofu is on PATH")
		}
	}
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	start := time.Now()
	run(t, ctx, os.Environ(), root, "scripts/deploy/build-images")
	t.Logf("images built in %s", time.Since(start).Round(time.Second))
	gantry := filepath.Join(t.TempDir(), "gantry")
	run(t, ctx, os.Environ(), root, "go", "build", "-o", gantry, "./cmd/gantry")

	// Not t.TempDir: the launchers' work dirs hold files of the runs' user,
	// which a test running as another user cannot remove.
	dir, err := os.MkdirTemp("", "gantry-compose-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("gantrytest%d", time.Now().UnixNano()%1_000_000_000)
	base := append(os.Environ(),
		"GANTRY_TOOLS_DIR="+filepath.Dir(tool),
		"GANTRY_LAUNCHER_WORK_ROOT="+filepath.Join(dir, "work"),
		"GANTRY_NETWORK="+project,
	)
	run(t, ctx, base, root, "scripts/deploy/compose/init-env", filepath.Join(dir, "config"))

	// The repository the runs clone, readable by the servers (git ls-remote
	// as uid 65532) and the launchers, whoever owns it.
	repoURL := strings.TrimSpace(run(t, ctx, append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null"), root, "scripts/demo-repo", filepath.Join(dir, "demo")))
	demo := strings.TrimPrefix(repoURL, "file://")
	gitconfig := filepath.Join(dir, "gitconfig")
	if err := os.WriteFile(gitconfig, []byte("[safe]\n\tdirectory = *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("chmod", "-R", "a+rX", demo).Run(); err != nil {
		t.Fatal(err)
	}
	mounts := fmt.Sprintf(`["%s:%s:ro", "%s:%s:ro"]`, demo, demo, gitconfig, gitconfig)
	override := filepath.Join(dir, "override.yml")
	if err := os.WriteFile(override, []byte(fmt.Sprintf(`version: "3.8"
services:
  server-1: {environment: {GIT_CONFIG_GLOBAL: %[1]s}, volumes: %[2]s}
  server-2: {environment: {GIT_CONFIG_GLOBAL: %[1]s}, volumes: %[2]s}
  launcher-1: {environment: {GIT_CONFIG_GLOBAL: %[1]s, GANTRY_WHITELIST_ENVS: GIT_CONFIG_GLOBAL}, volumes: %[2]s}
  launcher-2: {environment: {GIT_CONFIG_GLOBAL: %[1]s, GANTRY_WHITELIST_ENVS: GIT_CONFIG_GLOBAL}, volumes: %[2]s}
`, gitconfig, mounts)), 0o644); err != nil {
		t.Fatal(err)
	}

	composeEnv := append(base,
		"GANTRY_SERVER_1_PORT=", "GANTRY_SERVER_2_PORT=",
		"GANTRY_SERVER_1_INSTRUMENTATION_PORT=", "GANTRY_SERVER_2_INSTRUMENTATION_PORT=",
	)
	compose := func(env []string, args ...string) string {
		t.Helper()
		return run(t, ctx, env, root, "docker-compose", append([]string{"-p", project,
			"--env-file", filepath.Join(dir, "config", ".env"),
			"-f", filepath.Join(root, "scripts/deploy/compose/docker-compose.yml"), "-f", override}, args...)...)
	}
	t.Cleanup(func() {
		// A fresh context: the test's may have run out.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := func(args ...string) string {
			out, _ := try(ctx, composeEnv, root, "docker-compose", append([]string{"-p", project,
				"--env-file", filepath.Join(dir, "config", ".env"),
				"-f", filepath.Join(root, "scripts/deploy/compose/docker-compose.yml"), "-f", override}, args...)...)
			return out
		}
		if t.Failed() {
			t.Logf("compose logs:\n%s", c("logs", "--no-color", "--tail=40"))
		}
		c("stop", "-t", "15", "launcher-1", "launcher-2")
		// Run containers the launchers had not removed yet hold the network.
		if ids, _ := try(ctx, nil, "", "docker", "ps", "-aq", "--filter", "network="+project); strings.TrimSpace(ids) != "" {
			_, _ = try(ctx, nil, "", "docker", append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		if out, err := try(ctx, composeEnv, root, "docker-compose", "-p", project,
			"--env-file", filepath.Join(dir, "config", ".env"),
			"-f", filepath.Join(root, "scripts/deploy/compose/docker-compose.yml"), "-f", override,
			"down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
		if left, _ := try(ctx, nil, "", "docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); strings.TrimSpace(left) != "" {
			t.Errorf("containers of %s left: %s", project, left)
		}
	})

	start = time.Now()
	compose(composeEnv, "up", "-d", "postgres", "nats", "server-1", "server-2")
	// The first admin key: whichever replica made it wrote it to the shared volume.
	server1 := strings.TrimSpace(compose(composeEnv, "ps", "-q", "server-1"))
	keyFile := filepath.Join(dir, "admin.key")
	var adminKey string
	for deadline := time.Now().Add(2 * time.Minute); adminKey == ""; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no admin key was written within 2 minutes")
		}
		if _, err := try(ctx, nil, "", "docker", "cp", server1+":/var/lib/gantry/admin/admin.key", keyFile); err == nil {
			data, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			adminKey = strings.TrimSpace(string(data))
		}
	}
	servers := map[string]string{}
	for _, s := range []string{"server-1", "server-2"} {
		servers[s] = "http://" + strings.TrimSpace(compose(composeEnv, "port", s, "1983"))
	}
	cli := func(server string, args ...string) string {
		t.Helper()
		return run(t, ctx, append(os.Environ(), "GANTRY_SERVER="+servers[server], "GANTRY_TOKEN="+adminKey, "NO_COLOR=1"), dir, gantry, args...)
	}
	// Both replicas answer before anything is asked of them.
	for s := range servers {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			if _, err := try(ctx, append(os.Environ(), "GANTRY_SERVER="+servers[s], "GANTRY_TOKEN="+adminKey), dir, gantry, "pool", "list"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer at %s", s, servers[s])
			}
		}
	}
	t.Logf("servers up in %s", time.Since(start).Round(time.Second))

	key, csr := poolKey(t, dir)
	var created struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(cli("server-1", "pool", "create", "builders", "--csr", csr, "-o", "json")), &created); err != nil || created.Token == "" {
		t.Fatalf("pool create printed no token: %v", err)
	}
	compose(append(composeEnv, "GANTRY_POOL_TOKEN="+created.Token, "GANTRY_POOL_PRIVATE_KEY="+key), "up", "-d", "--no-deps", "launcher-1", "launcher-2")
	cli("server-1", "stack", "create", "demo", "--repo", repoURL, "--pool", "builders", "--managed-state", "--autodeploy")

	for i, s := range []string{"server-1", "server-2"} {
		start := time.Now()
		var got struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		// Each run changes something: the greeting names the replica.
		cli(s, "stack", "env", "set", "demo", "TF_VAR_greeting", "through "+s)
		out := cli(s, "run", "trigger", "demo", "--wait", "-o", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("run trigger through %s printed %q: %v", s, out, err)
		}
		if !strings.HasSuffix(got.State, "FINISHED") {
			t.Fatalf("the run through %s is %s", s, got.State)
		}
		t.Logf("run %s through %s FINISHED in %s", got.ID, s, time.Since(start).Round(100*time.Millisecond))
		// The other replica sees it, with the apply in its log (from the
		// shared bucket) and a new state version.
		other := []string{"server-2", "server-1"}[i]
		if logs := cli(other, "run", "logs", got.ID); !strings.Contains(logs, "Apply complete!") {
			t.Errorf("the log of %s read through %s lacks the apply:\n%s", got.ID, other, logs)
		}
	}
	if versions := cli("server-2", "state", "versions", "demo"); strings.Count(versions, "\n") < 2 {
		t.Errorf("state versions after two applies:\n%s", versions)
	}
}
