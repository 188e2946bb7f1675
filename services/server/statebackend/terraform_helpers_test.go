package statebackend_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// mainTF needs no provider download: terraform_data and local-exec are built in.
const mainTF = `
variable "input" {
  type    = string
  default = "one"
}

variable "sleep" {
  type    = number
  default = 0
}

resource "terraform_data" "example" {
  input            = var.input
  triggers_replace = [var.input]

  provisioner "local-exec" {
    command = "sleep ${var.sleep}"
  }
}

output "value" {
  value = terraform_data.example.output
}
`

// tfCommandTimeout bounds one terraform command.
const tfCommandTimeout = 2 * time.Minute

// project is a Terraform project root with its own HOME, data directory and
// an empty CLI configuration, run without network access to anything but
// the test's server.
type project struct {
	t   testing.TB
	dir string
	env []string
}

func newProject(t testing.TB, config string) *project {
	t.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Fatalf("these tests run the real terraform binary: %v", err)
	}
	dir, home := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(home, "terraformrc")
	if err := os.WriteFile(rc, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &project{t: t, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TF_DATA_DIR=" + filepath.Join(home, "tfdata"),
		"TF_CLI_CONFIG_FILE=" + rc,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
	}}
}

// writeOverride writes the backend override for the stack; zero creds leave
// the credentials out of the file.
func (p *project) writeOverride(serverURL, stackID string, creds statebackend.Credentials) {
	p.t.Helper()
	data := tfbackend.OverrideFile(serverURL, stackID, tfbackend.Credentials{Username: creds.Username, Password: creds.Password})
	if err := os.WriteFile(filepath.Join(p.dir, tfbackend.OverrideFileName), data, 0o600); err != nil {
		p.t.Fatal(err)
	}
}

func (p *project) command(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "terraform", append(args, "-no-color")...)
	cmd.Dir = p.dir
	cmd.Env = append(append([]string{}, p.env...), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so a kill takes its children too
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// run runs terraform to the end and returns its combined output.
func (p *project) run(extraEnv []string, args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tfCommandTimeout)
	defer cancel()
	out, err := p.command(ctx, extraEnv, args...).CombinedOutput()
	return string(out), err
}

// mustRun runs terraform and fails the test if it fails.
func (p *project) mustRun(extraEnv []string, args ...string) string {
	p.t.Helper()
	out, err := p.run(extraEnv, args...)
	if err != nil {
		p.t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	p.t.Logf("terraform %s:\n%s", strings.Join(args, " "), out)
	return out
}
