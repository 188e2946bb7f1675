package executor

import (
	"github.com/gantryhq/gantry/services/platform/seal"

	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Defaults of Config, as SPEC.md's launcher settings table gives them.
const (
	DefaultLogsTimeout = 7 * time.Minute
	DefaultRunTimeout  = 70 * time.Minute
	DefaultStopGrace   = 10 * time.Second
	// DefaultPath is the PATH runs get when Config.Path is empty.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Config is what an Executor needs from its launcher. The launcher reads its
// environment (GANTRY_LAUNCHER_LOGS_TIMEOUT, …) and fills this in; the
// executor itself reads no environment variable.
type Config struct {
	// WorkDir is the directory that holds one fresh workspace per run;
	// empty means the system's temporary directory.
	WorkDir string
	// RepoCacheDir, if set, is where the worker keeps its repository cache
	// (repocache.go): a run checks out from there, fetching only a commit
	// it does not hold yet. Empty: every run clones the repository. Several
	// executors, of one process or several, may share the directory.
	RepoCacheDir string
	// Path is the PATH every process of a run gets, and where the executor
	// looks for git, sh and the stack's tool. Empty means DefaultPath.
	Path string
	// LogsTimeout interrupts a process that writes nothing for this long.
	LogsTimeout time.Duration
	// RunTimeout interrupts a run that lasts longer than this, measured
	// from Start.
	RunTimeout time.Duration
	// StopGrace is how long an interrupted process group has between
	// SIGINT and SIGKILL.
	StopGrace time.Duration
	// PoolKey is the worker pool's private key (*rsa.PrivateKey,
	// *ecdsa.PrivateKey, *ecdh.PrivateKey or an RSA crypto.Decrypter):
	// saved workspaces are encrypted to its public key and decrypted with it.
	PoolKey crypto.PrivateKey
	// Workspaces keeps the encrypted workspaces of UNCONFIRMED runs.
	Workspaces WorkspaceStore
	// Docker, if set, runs the phases' commands in a container of the
	// stack's runner image instead of on the host (see DockerConfig).
	Docker *DockerConfig
}

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.LogsTimeout == 0 {
		c.LogsTimeout = DefaultLogsTimeout
	}
	if c.RunTimeout == 0 {
		c.RunTimeout = DefaultRunTimeout
	}
	if c.StopGrace == 0 {
		c.StopGrace = DefaultStopGrace
	}
	return c
}

// Validate reports every problem of c at once. Zero durations and an empty
// Path are valid: they mean the defaults.
func (c Config) Validate() error {
	var errs []error
	if c.WorkDir != "" && !filepath.IsAbs(c.WorkDir) {
		errs = append(errs, fmt.Errorf("work dir %q must be an absolute path", c.WorkDir))
	}
	if c.RepoCacheDir != "" && !filepath.IsAbs(c.RepoCacheDir) {
		errs = append(errs, fmt.Errorf("repository cache dir %q must be an absolute path", c.RepoCacheDir))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"logs timeout", c.LogsTimeout}, {"run timeout", c.RunTimeout}, {"stop grace", c.StopGrace}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", d.name, d.v))
		}
	}
	if c.PoolKey == nil {
		errs = append(errs, errors.New("pool key is required: it encrypts the workspaces of unconfirmed runs"))
	} else if _, err := seal.PublicKeyOf(c.PoolKey); err != nil {
		errs = append(errs, fmt.Errorf("pool key: %w", err))
	}
	if c.Workspaces == nil {
		errs = append(errs, errors.New("workspace store is required: it keeps the workspaces of unconfirmed runs"))
	}
	if c.Docker != nil {
		if err := c.Docker.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("docker: %w", err))
		}
	}
	return errors.Join(errs...)
}

// discardLogger is the logger of an Executor built without one.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
