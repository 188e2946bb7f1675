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

// project is a compose project of scripts/deploy/compose under a name of
// its own, its servers up and the pool "builders" made, with what the test
// needs to reach it.
type project struct {
	t        *testing.T
	ctx      context.Context
	root     string
	dir      string
	name     string
	gantry   string
	files    []string
	env      []string
	adminKey string
	servers  map[string]string // service name: API URL on 127.0.0.1
	repoURL  string
	poolEnv  []string // GANTRY_POOL_TOKEN and GANTRY_POOL_PRIVATE_KEY
}

// startProject builds the images, writes the settings (init-env), a demo
// repository and an override that mounts it, brings up PostgreSQL, NATS
// (services) and both servers with every port on a free port of 127.0.0.1,
// reads the first admin key and makes the pool. extraFiles are compose files
// after docker-compose.yml (paths relative to scripts/deploy/compose). Its
// cleanup removes the containers, networks and volumes it made; the images
// stay, tagged gantry-deploy/*:local.
func startProject(t *testing.T, ctx context.Context, nats []string, extraFiles ...string) *project {
	t.Helper()
	tool, err := exec.LookPath("terraform")
	if err != nil {
		if tool, err = exec.LookPath("tofu"); err != nil {
			need(t, "neither terraform nor tofu is on PATH")
		}
	}
	root := repoRoot(t)
	start := time.Now()
	run(t, ctx, os.Environ(), root, "scripts/deploy/build-images")
	t.Logf("images built in %s", time.Since(start).Round(time.Second))
	p := &project{t: t, ctx: ctx, root: root, gantry: filepath.Join(t.TempDir(), "gantry"), servers: map[string]string{}}
	run(t, ctx, os.Environ(), root, "go", "build", "-o", p.gantry, "./cmd/gantry")

	// Not t.TempDir: the launchers' work dirs hold files of the runs' user,
	// which a test running as another user cannot remove.
	if p.dir, err = os.MkdirTemp("", "gantry-compose-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(p.dir) })
	if err := os.Chmod(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.name = fmt.Sprintf("gantrytest%d", time.Now().UnixNano()%1_000_000_000)
	base := append(os.Environ(),
		"GANTRY_TOOLS_DIR="+filepath.Dir(tool),
		"GANTRY_LAUNCHER_WORK_ROOT="+filepath.Join(p.dir, "work"),
		"GANTRY_NETWORK="+p.name,
	)
	run(t, ctx, base, root, "scripts/deploy/compose/init-env", filepath.Join(p.dir, "config"))

	// The repository the runs clone, readable by the servers (git ls-remote
	// as uid 65532) and the launchers, whoever owns it.
	p.repoURL = strings.TrimSpace(run(t, ctx, append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null"), root, "scripts/demo-repo", filepath.Join(p.dir, "demo")))
	demo := strings.TrimPrefix(p.repoURL, "file://")
	gitconfig := filepath.Join(p.dir, "gitconfig")
	if err := os.WriteFile(gitconfig, []byte("[safe]\n\tdirectory = *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("chmod", "-R", "a+rX", demo).Run(); err != nil {
		t.Fatal(err)
	}
	mounts := fmt.Sprintf(`["%s:%s:ro", "%s:%s:ro"]`, demo, demo, gitconfig, gitconfig)
	override := filepath.Join(p.dir, "override.yml")
	if err := os.WriteFile(override, []byte(fmt.Sprintf(`version: "3.8"
services:
  server-1: {environment: {GIT_CONFIG_GLOBAL: %[1]s}, volumes: %[2]s}
  server-2: {environment: {GIT_CONFIG_GLOBAL: %[1]s}, volumes: %[2]s}
  launcher-1: {environment: {GIT_CONFIG_GLOBAL: %[1]s, GANTRY_WHITELIST_ENVS: GIT_CONFIG_GLOBAL}, volumes: %[2]s}
  launcher-2: {environment: {GIT_CONFIG_GLOBAL: %[1]s, GANTRY_WHITELIST_ENVS: GIT_CONFIG_GLOBAL}, volumes: %[2]s}
  postgres: {ports: ["127.0.0.1::5432"]}
`, gitconfig, mounts)+natsPorts(nats)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.files = []string{filepath.Join(root, "scripts/deploy/compose/docker-compose.yml")}
	for _, f := range extraFiles {
		p.files = append(p.files, filepath.Join(root, "scripts/deploy/compose", f))
	}
	p.files = append(p.files, override)
	p.env = append(base,
		"GANTRY_SERVER_1_PORT=", "GANTRY_SERVER_2_PORT=",
		"GANTRY_SERVER_1_INSTRUMENTATION_PORT=", "GANTRY_SERVER_2_INSTRUMENTATION_PORT=",
	)
	t.Cleanup(p.down)

	start = time.Now()
	p.compose(append(append([]string{"up", "-d", "postgres"}, nats...), "server-1", "server-2")...)
	// The first admin key: whichever replica made it wrote it to the shared volume.
	server1 := strings.TrimSpace(p.compose("ps", "-q", "server-1"))
	keyFile := filepath.Join(p.dir, "admin.key")
	for deadline := time.Now().Add(2 * time.Minute); p.adminKey == ""; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no admin key was written within 2 minutes")
		}
		if _, err := try(ctx, nil, "", "docker", "cp", server1+":/var/lib/gantry/admin/admin.key", keyFile); err == nil {
			data, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			p.adminKey = strings.TrimSpace(string(data))
		}
	}
	for _, s := range []string{"server-1", "server-2"} {
		p.servers[s] = "http://" + p.port(s, "1983")
	}
	// Both replicas answer before anything is asked of them.
	for s := range p.servers {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			if _, err := p.tryCLI(s, "pool", "list"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer at %s", s, p.servers[s])
			}
		}
	}
	t.Logf("servers up in %s", time.Since(start).Round(time.Second))

	key, csr := poolKey(t, p.dir)
	var created struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(p.cli("server-1", "pool", "create", "builders", "--csr", csr, "-o", "json")), &created); err != nil || created.Token == "" {
		t.Fatalf("pool create printed no token: %v", err)
	}
	p.poolEnv = []string{"GANTRY_POOL_TOKEN=" + created.Token, "GANTRY_POOL_PRIVATE_KEY=" + key}
	return p
}

// natsPorts publishes each NATS node's client port on a free port.
func natsPorts(nodes []string) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "  %s: {ports: [\"127.0.0.1::4222\"]}\n", n)
	}
	return b.String()
}

func (p *project) args(args ...string) []string {
	out := []string{"-p", p.name, "--env-file", filepath.Join(p.dir, "config", ".env")}
	for _, f := range p.files {
		out = append(out, "-f", f)
	}
	return append(out, args...)
}

// compose runs docker-compose on the project, failing the test if it fails.
func (p *project) compose(args ...string) string {
	p.t.Helper()
	return run(p.t, p.ctx, append(p.env, p.poolEnv...), p.root, "docker-compose", p.args(args...)...)
}

// port is the 127.0.0.1:port a service's port is published on.
func (p *project) port(service, port string) string {
	p.t.Helper()
	return strings.TrimSpace(p.compose("port", service, port))
}

// startLaunchers starts the launchers of the pool.
func (p *project) startLaunchers() {
	p.t.Helper()
	p.compose("up", "-d", "--no-deps", "launcher-1", "launcher-2")
}

func (p *project) cliEnv(server string) []string {
	return append(os.Environ(), "GANTRY_SERVER="+p.servers[server], "GANTRY_TOKEN="+p.adminKey, "NO_COLOR=1")
}

// cli runs the gantry CLI against a server replica as the admin.
func (p *project) cli(server string, args ...string) string {
	p.t.Helper()
	return run(p.t, p.ctx, p.cliEnv(server), p.dir, p.gantry, args...)
}

func (p *project) tryCLI(server string, args ...string) (string, error) {
	return try(p.ctx, p.cliEnv(server), p.dir, p.gantry, args...)
}

// down removes the project's containers, network and volumes, and the run
// containers its launchers left.
func (p *project) down() {
	t := p.t
	// A fresh context: the test's may have run out.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := func(args ...string) (string, error) {
		return try(ctx, p.env, p.root, "docker-compose", p.args(args...)...)
	}
	if t.Failed() {
		out, _ := c("logs", "--no-color", "--tail=40")
		t.Logf("compose logs:\n%s", out)
	}
	_, _ = c("stop", "-t", "15", "launcher-1", "launcher-2")
	// Launchers started outside compose (the soak's) stop too.
	if ids, _ := try(ctx, nil, "", "docker", "ps", "-q", "--filter", "network="+p.name, "--filter", "ancestor=gantry-deploy/launcher:local"); strings.TrimSpace(ids) != "" {
		_, _ = try(ctx, nil, "", "docker", append([]string{"stop", "-t", "15"}, strings.Fields(ids)...)...)
	}
	// Run containers hold the network until their launcher's background
	// removal ends: wait for it (removing a container twice at once can
	// leave the engine with an endpoint it never frees), then remove what
	// is left.
	runContainers := func() []string {
		ids, _ := try(ctx, nil, "", "docker", "ps", "-aq", "--filter", "network="+p.name, "--filter", "label=gantry.launcher")
		return strings.Fields(ids)
	}
	for deadline := time.Now().Add(30 * time.Second); len(runContainers()) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
	}
	if ids := runContainers(); len(ids) > 0 {
		_, _ = try(ctx, nil, "", "docker", append([]string{"rm", "-f"}, ids...)...)
	}
	if ids, _ := try(ctx, nil, "", "docker", "ps", "-aq", "--filter", "network="+p.name, "--filter", "ancestor=gantry-deploy/launcher:local"); strings.TrimSpace(ids) != "" {
		_, _ = try(ctx, nil, "", "docker", append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	if out, err := c("down", "-v", "--remove-orphans", "-t", "10"); err != nil {
		// Docker 20.10 sometimes keeps an endpoint of a run container it
		// removed (under container churn), and then refuses to remove the
		// network although no container is attached: the engine's leak, not
		// the project's. Anything else, or a container still attached, fails.
		attached, _ := try(ctx, nil, "", "docker", "network", "inspect", "-f", "{{len .Containers}}", p.name)
		if !strings.Contains(out, "has active endpoints") || strings.TrimSpace(attached) != "0" {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		} else {
			t.Logf("the engine kept a stale endpoint on network %s (no container attached): the network stays; its volumes are removed", p.name)
		}
		if vols, _ := try(ctx, nil, "", "docker", "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name); strings.TrimSpace(vols) != "" {
			if out, err := try(ctx, nil, "", "docker", append([]string{"volume", "rm"}, strings.Fields(vols)...)...); err != nil {
				t.Errorf("remove the volumes of %s: %v\n%s", p.name, err, out)
			}
		}
	}
	if left, _ := try(ctx, nil, "", "docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.name); strings.TrimSpace(left) != "" {
		t.Errorf("containers of %s left: %s", p.name, left)
	}
}

// TestComposeRunsThroughEachServer brings the compose project up
// (PostgreSQL, NATS, two servers, two Docker launchers) and takes a tracked
// run with managed state to FINISHED through each server replica, real
// terraform in the runner image.
func TestComposeRunsThroughEachServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs the compose project")
	}
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	p := startProject(t, ctx, []string{"nats"})
	p.startLaunchers()
	p.cli("server-1", "stack", "create", "demo", "--repo", p.repoURL, "--pool", "builders", "--managed-state", "--autodeploy")

	for i, s := range []string{"server-1", "server-2"} {
		start := time.Now()
		var got struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		// Each run changes something: the greeting names the replica.
		p.cli(s, "stack", "env", "set", "demo", "TF_VAR_greeting", "through "+s)
		out := p.cli(s, "run", "trigger", "demo", "--wait", "-o", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("run trigger through %s printed %q: %v", s, out, err)
		}
		if !strings.HasSuffix(got.State, "FINISHED") {
			t.Fatalf("the run through %s is %s", s, got.State)
		}
		t.Logf("run %s through %s FINISHED in %s", got.ID, s, time.Since(start).Round(100*time.Millisecond))
		// The other replica sees it, with the apply in its log (from the
		// shared bucket).
		other := []string{"server-2", "server-1"}[i]
		if logs := p.cli(other, "run", "logs", got.ID); !strings.Contains(logs, "Apply complete!") {
			t.Errorf("the log of %s read through %s lacks the apply:\n%s", got.ID, other, logs)
		}
	}
	if versions := p.cli("server-2", "state", "versions", "demo"); strings.Count(versions, "\n") < 2 {
		t.Errorf("state versions after two applies:\n%s", versions)
	}
}
