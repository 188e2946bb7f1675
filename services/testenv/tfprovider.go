package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The test provider (services/testenv/tfprovider) as configurations require it.
const (
	TestProviderSource  = "gantry/test"
	TestProviderVersion = "1.0.0"
)

// ProviderMirror is a filesystem mirror of the test provider and a
// terraform CLI configuration that installs it from there and nothing
// from the network.
type ProviderMirror struct {
	// Dir holds both (readable by every user, so that it can be mounted
	// into run containers); Mirror and CLIConfig are inside it.
	Dir string
	// Mirror is the filesystem mirror: registry.terraform.io/gantry/test/
	// 1.0.0/<os>_<arch>/terraform-provider-test_v1.0.0.
	Mirror string
	// CLIConfig is the file to give terraform as TF_CLI_CONFIG_FILE.
	CLIConfig string
}

var providerMirror struct {
	once sync.Once
	m    ProviderMirror
	err  error
}

// TestProvider returns the mirror of the test provider, built (statically
// linked: it also runs in containers) at the first call of the test binary
// and removed by Run.
func TestProvider(t testing.TB) ProviderMirror {
	t.Helper()
	providerMirror.once.Do(func() { providerMirror.m, providerMirror.err = buildProviderMirror() })
	if providerMirror.err != nil {
		t.Fatalf("the test provider: %v", providerMirror.err)
	}
	return providerMirror.m
}

func buildProviderMirror() (ProviderMirror, error) {
	dir, err := os.MkdirTemp("", "gantry-test-provider-")
	if err != nil {
		return ProviderMirror{}, err
	}
	m := ProviderMirror{Dir: dir, Mirror: filepath.Join(dir, "mirror"), CLIConfig: filepath.Join(dir, "terraformrc")}
	platform := filepath.Join(m.Mirror, "registry.terraform.io", TestProviderSource, TestProviderVersion, runtime.GOOS+"_"+runtime.GOARCH)
	cmd := exec.Command("go", "build", "-o", filepath.Join(platform, "terraform-provider-test_v"+TestProviderVersion),
		"github.com/gantryhq/gantry/services/testenv/tfprovider")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return m, fmt.Errorf("go build: %v\n%s", err, out)
	}
	config := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/%s"]
  }
  direct {
    exclude = ["registry.terraform.io/%s"]
  }
}
`, m.Mirror, TestProviderSource, TestProviderSource)
	if err := os.WriteFile(m.CLIConfig, []byte(config), 0o644); err != nil {
		return m, err
	}
	// MkdirTemp made dir for its user alone; a container's user reads it too.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o755)
	})
	return m, err
}

// releaseProviderMirror removes the test provider's mirror, if one was built.
func releaseProviderMirror() error {
	if providerMirror.m.Dir == "" {
		return nil
	}
	return os.RemoveAll(providerMirror.m.Dir)
}
