package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/settings"
)

// The S3-compatible server the object storage tests run against: versitygw
// with its posix backend, built from its Go module. scripts/prereqs builds
// the same version into .gantry/tools/bin; keep the two in step.
const (
	versitygwModule  = "github.com/versity/versitygw/cmd/versitygw"
	versitygwVersion = "v1.8.0"
)

// VersitygwEnv names a versitygw binary to use instead of looking for one.
var VersitygwEnv = settings.Versitygw.Name

// The fixed credentials and region of every test S3 server.
const (
	S3AccessKey = "gantry-test-access"
	S3SecretKey = "gantry-test-secret-key"
	S3Region    = "us-east-1"
)

// s3StartTimeout bounds one start of the server, until it answers.
const s3StartTimeout = 30 * time.Second

// S3Server is a versitygw S3 server owned by one test, on a loopback port,
// storing buckets as directories of a temporary directory.
type S3Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>.
	Endpoint string
	root     string
}

// S3 starts an S3 server for the test and stops it when the test ends. It
// sets the standard AWS environment (AWS_ACCESS_KEY_ID, ...) to its
// credentials, as an operator would, so the test cannot be parallel. The
// binary is GANTRY_VERSITYGW, versitygw on PATH, or the one scripts/prereqs
// builds into .gantry/tools/bin (which is built here if missing, except
// under CI=true, where its absence fails the test).
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin := versitygwBinary(t)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": S3AccessKey, "AWS_SECRET_ACCESS_KEY": S3SecretKey, "AWS_REGION": S3Region,
		// Nothing but the variables above: no profile files, and never the EC2 metadata service.
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
	} {
		t.Setenv(k, v)
	}
	root := filepath.Join(t.TempDir(), "s3")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 3 { // another process may take the port between picking and binding it
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = startVersitygw(t, bin, addr, root); lastErr == nil {
			return &S3Server{Endpoint: "http://" + addr, root: root}
		}
	}
	t.Fatalf("start the test S3 server: %v", lastErr)
	return nil
}

// NewBucket creates a bucket called name and returns its s3:// URL, with
// the endpoint, region and path-style settings an S3-compatible server
// needs.
func (s *S3Server) NewBucket(t testing.TB, name string) string {
	t.Helper()
	// versitygw's posix backend keeps each bucket as a directory of its root.
	if err := os.Mkdir(filepath.Join(s.root, name), 0o700); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return s.BucketURL(name)
}

// BucketURL returns the s3:// URL of the bucket called name.
func (s *S3Server) BucketURL(name string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {S3Region}, "use_path_style": {"true"}}
	return "s3://" + name + "?" + q.Encode()
}

// startVersitygw starts the server on addr and waits until it answers; the
// test's cleanup stops it.
func startVersitygw(t testing.TB, bin, addr, root string) error {
	var out bytes.Buffer
	cmd := exec.Command(bin, "--access", S3AccessKey, "--secret", S3SecretKey, "--region", S3Region,
		"--port", addr, "--quiet", "posix", root)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its environment is its own: the root credentials come from the flags.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(s3StartTimeout)
	client := &http.Client{Timeout: time.Second}
	for poll := 10 * time.Millisecond; ; poll = min(2*poll, 200*time.Millisecond) {
		// Any answer, even 403 to an unsigned request, means it serves.
		if resp, err := client.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			client.CloseIdleConnections()
			t.Cleanup(stop)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw on %s exited (%v): %s", addr, err, strings.TrimSpace(out.String()))
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("versitygw on %s did not answer within %s: %s", addr, s3StartTimeout, strings.TrimSpace(out.String()))
		}
	}
}

// freeLoopbackAddr returns 127.0.0.1:<a port free a moment ago>.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

var versitygwBuild struct {
	once sync.Once
	path string
	err  error
}

// versitygwBinary finds the versitygw binary, building it into the
// repository's .gantry/tools/bin on first use when there is none.
func versitygwBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(VersitygwEnv); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(root, ".gantry", "tools", "bin")
	versitygwBuild.once.Do(func() {
		versitygwBuild.path, versitygwBuild.err = buildVersitygw(binDir)
	})
	if versitygwBuild.err != nil {
		t.Fatalf("the object storage tests need versitygw %s: %v", versitygwVersion, versitygwBuild.err)
	}
	return versitygwBuild.path
}

// buildVersitygw returns binDir/versitygw, building it with go install when
// it is missing or of another version. Under CI=true a missing binary is an
// error: scripts/prereqs must have built it.
func buildVersitygw(binDir string) (string, error) {
	path := filepath.Join(binDir, "versitygw")
	stamp := filepath.Join(binDir, "versitygw.version")
	if v, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(v)) == versitygwVersion {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	if os.Getenv("CI") == "true" {
		return "", fmt.Errorf("%s is missing or not %s: scripts/prereqs builds it (or set %s)", path, versitygwVersion, VersitygwEnv)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	// Built in a directory of its own and renamed into place, so that test
	// binaries building at once never run a half-written file.
	tmp, err := os.MkdirTemp(binDir, ".versitygw-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", versitygwModule+"@"+versitygwVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", versitygwModule, versitygwVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), path); err != nil {
		return "", err
	}
	if err := os.WriteFile(stamp, []byte(versitygwVersion+"\n"), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// repoRoot is the directory of the go.mod above the working directory (a
// test runs in its package's directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
