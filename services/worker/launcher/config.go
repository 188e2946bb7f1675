package launcher

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// The names of the environment variables a launcher reads (SPEC.md,
// "Launcher settings"), declared with their defaults and checks in the
// settings table.
var (
	EnvToken          = settings.Token.Name
	EnvPoolKey        = settings.PoolPrivateKey.Name
	EnvMaskEnvs       = settings.MaskEnvs.Name
	EnvRunLogsStdout  = settings.RunLogsOnStdout.Name
	EnvLogsTimeout    = settings.LauncherLogsTimeout.Name
	EnvRunTimeout     = settings.LauncherRunTimeout.Name
	EnvShutdownGrace  = settings.LauncherShutdownGrace.Name
	EnvDebug          = settings.Debug.Name
	EnvWhitelistEnvs  = settings.WhitelistEnvs.Name
	EnvMetadataPrefix = settings.Metadata.Name
	EnvWorkDir        = settings.LauncherWorkDir.Name
	// EnvRepoCacheDir is where the worker keeps its repository cache: an
	// absolute path, or "off" for a clone per run; unset,
	// DefaultRepoCacheDir of the work directory.
	EnvRepoCacheDir = settings.LauncherRepoCacheDir.Name
	// EnvSensitiveOutputs uploads sensitive outputs, sealed to the server's
	// key, with the others (outputs.go).
	EnvSensitiveOutputs = settings.SensitiveOutputUpload.Name
	// EnvExecutor is "docker" or "process"; unset, docker where a Docker
	// engine answers and process elsewhere.
	EnvExecutor      = settings.LauncherExecutor.Name
	EnvDefaultImage  = settings.DefaultRunnerImage.Name
	EnvDockerConfig  = settings.DockerConfigDir.Name
	EnvExtraMounts   = settings.WorkerExtraMounts.Name
	EnvROExtraMounts = settings.WorkerROExtraMounts.Name
	EnvWOExtraMounts = settings.WorkerWOExtraMounts.Name
	EnvNetwork       = settings.WorkerNetwork.Name
	EnvRuntime       = settings.WorkerRuntime.Name
	EnvWorkerUser    = settings.WorkerUser.Name
	// EnvDockerHost is the Docker engine's address, as the docker CLI
	// reads it.
	EnvDockerHost = settings.DockerHost.Name
)

// Executors a launcher runs runs with (GANTRY_LAUNCHER_EXECUTOR).
const (
	ExecutorDocker  = "docker"
	ExecutorProcess = "process"
)

// Defaults of Config.
const (
	// DefaultHeartbeatInterval is five heartbeats to the server's default
	// timeout of 10 s.
	DefaultHeartbeatInterval = 2 * time.Second
	// DefaultShutdownGrace is how long a launcher told to stop (SIGTERM)
	// lets its run go on before failing it.
	DefaultShutdownGrace = 90 * time.Second
	// CycleGrace is how long a run may go on once its pool is cycled
	// before it is handed back (or, applying, failed): every worker exits
	// within 20 s (SPEC.md), the stop of the run's processes and the
	// reports included.
	CycleGrace = 8 * time.Second
	// reportTimeout bounds a report outside a run (the worker's exit).
	reportTimeout = 30 * time.Second
	// resultTimeout is how long after the run's own timeout the reports of
	// a run are still repeated, with their report ids, while the server
	// does not accept them: a run's reports wait out any outage of the
	// server, its database or NATS shorter than the run's timeout and this.
	resultTimeout = 10 * time.Minute
)

// Config is what a launcher runs with. FromEnv builds it from the
// environment; tests and `gantry dev` fill it in directly.
type Config struct {
	Token protocol.PoolToken
	// PoolKey is the pool's private key; its public key must be the one of
	// Token.Certificate.
	PoolKey  crypto.PrivateKey
	Metadata map[string]string
	// Version is the launcher's version, reported at registration.
	Version string
	// SensitiveOutputs uploads the values of sensitive outputs, sealed to
	// the server's outputs key (GANTRY_SENSITIVE_OUTPUT_UPLOAD_ENABLED);
	// otherwise only their names are recorded.
	SensitiveOutputs bool
	// Policy, if set, is evaluated against each run's metadata before its
	// first phase; a denial fails the run
	// (GANTRY_LAUNCHER_RUN_INITIALIZATION_POLICY).
	Policy *Policy
	// Executor's timeouts, work directory and PATH; PoolKey and Workspaces
	// are set by the launcher.
	Executor executor.Config
	// MaskNames are GANTRY_MASK_ENVS: whitelisted variables whose values
	// never appear in logs.
	MaskNames []string
	// Whitelist are the launcher's variables passed to runs.
	Whitelist []executor.Variable
	Debug     bool
	// RunLogs, when set, also receives every run log line as a JSON line
	// with run_id, stack_id, ts and msg (GANTRY_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED).
	RunLogs io.Writer
	// ShutdownGrace is how long a run may go on after the launcher was told
	// to stop (default DefaultShutdownGrace).
	ShutdownGrace time.Duration
	// HeartbeatInterval is how often the worker tells the server it lives
	// (default DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	Logger            *slog.Logger
	// TracerProvider traces each run as a child of the assignment's span;
	// nil: runs are not traced here, but the server's trace context still
	// goes back with the reports.
	TracerProvider trace.TracerProvider
}

// FromEnv reads a launcher's configuration from its environment (environ
// as os.Environ returns it). Every problem is reported at once, each naming
// its variable; nothing in an error quotes the token or the key.
func FromEnv(environ []string, stdout io.Writer) (Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	getenv := func(name string) string { return env[name] }
	var (
		cfg  Config
		errs []error
	)
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	var certPub crypto.PublicKey
	if raw := settings.Token.Value(getenv); strings.TrimSpace(raw) == "" {
		bad(EnvToken, "not set: give the pool token `gantry pool create` or `gantry pool reset` printed")
	} else if tok, err := protocol.DecodePoolToken(raw); err != nil {
		bad(EnvToken, "%v", err)
	} else if pub, err := certificatePublicKey(tok.Certificate); err != nil {
		bad(EnvToken, "the token's certificate: %v", err)
	} else {
		cfg.Token, certPub = tok, pub
	}
	if raw := settings.PoolPrivateKey.Value(getenv); strings.TrimSpace(raw) == "" {
		bad(EnvPoolKey, "not set: give the base64 of the PEM private key the pool's CSR was made with")
	} else if key, err := ParsePoolKey(raw); err != nil {
		bad(EnvPoolKey, "%v", err)
	} else {
		cfg.PoolKey = key
		if certPub != nil {
			if err := keyMatches(key, certPub); err != nil {
				bad(EnvPoolKey, "%v", err)
			}
		}
	}
	if err := settings.MaskEnvs.Check(getenv); err != nil {
		errs = append(errs, err)
	} else {
		cfg.MaskNames = splitList(settings.MaskEnvs.Value(getenv))
	}
	if on, err := settings.RunLogsOnStdout.Bool(getenv); err != nil {
		errs = append(errs, err)
	} else if on {
		cfg.RunLogs = stdout
	}
	for _, b := range []struct {
		v    *settings.Var
		into *bool
	}{{settings.SensitiveOutputUpload, &cfg.SensitiveOutputs}, {settings.Debug, &cfg.Debug}} {
		on, err := b.v.Bool(getenv)
		if err != nil {
			errs = append(errs, err)
		}
		*b.into = on
	}
	for _, d := range []struct {
		v    *settings.Var
		into *time.Duration
	}{{settings.LauncherLogsTimeout, &cfg.Executor.LogsTimeout}, {settings.LauncherRunTimeout, &cfg.Executor.RunTimeout}, {settings.LauncherShutdownGrace, &cfg.ShutdownGrace}} {
		v, err := d.v.Duration(getenv)
		if err != nil {
			errs = append(errs, err)
		}
		*d.into = v
	}
	// Runs find git, sh and the stack's tool where the launcher does.
	cfg.Executor.Path = settings.Path.Value(getenv)
	if dir, ok := settings.LauncherWorkDir.Lookup(getenv); ok {
		cfg.Executor.WorkDir = dir
	}
	if err := settings.LauncherRepoCacheDir.Check(getenv); err != nil {
		errs = append(errs, err)
	} else {
		switch dir, ok := settings.LauncherRepoCacheDir.Lookup(getenv); {
		case !ok:
			cfg.Executor.RepoCacheDir = DefaultRepoCacheDir(cfg.Executor.WorkDir)
		case dir != "off":
			cfg.Executor.RepoCacheDir = dir
		}
	}
	whitelist, err := executor.WhitelistVariables(settings.WhitelistEnvs.Value(getenv), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		bad(EnvWhitelistEnvs, "%v", err)
	}
	for _, v := range whitelist {
		if v.Name == EnvToken || v.Name == EnvPoolKey {
			bad(EnvWhitelistEnvs, "%s is the launcher's secret: it never goes to a run", v.Name)
		}
	}
	cfg.Whitelist = whitelist
	if path := strings.TrimSpace(settings.LauncherRunInitializationPolicy.Value(getenv)); path != "" {
		if cfg.Policy, err = LoadPolicy(context.Background(), path); err != nil {
			bad(EnvRunInitializationPolicy, "%v", err)
		}
	}
	docker, err := dockerFromEnv(getenv, settings.LauncherExecutor.Value(getenv))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Executor.Docker = docker
	cfg.Metadata = map[string]string{}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, EnvMetadataPrefix); ok {
			if name == "" {
				bad(k, "a metadata variable needs a key after %s", EnvMetadataPrefix)
				continue
			}
			cfg.Metadata[name] = env[k]
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("launcher configuration:\n%w", err)
	}
	return cfg, nil
}

// ParsePoolKey reads a pool private key given as base64 of its PEM (PKCS#1
// or PKCS#8 RSA, SEC 1 or PKCS#8 ECDSA). PEM itself is accepted too.
func ParsePoolKey(s string) (crypto.PrivateKey, error) {
	s = strings.TrimSpace(s)
	data := []byte(s)
	if !strings.HasPrefix(s, "-----BEGIN") {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errors.New("not base64 of a PEM private key (base64 -w0 gantry.key)")
		}
		data = raw
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: expected a private key such as -----BEGIN PRIVATE KEY-----")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA private key: %v", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("EC private key: %v", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8 private key: %v", err)
		}
		switch k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("a %T key: want RSA or ECDSA", k)
	}
	return nil, fmt.Errorf("a PEM %q block: want a private key", block.Type)
}

// certificatePublicKey returns the public key of a PEM certificate.
func certificatePublicKey(certPEM string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	return cert.PublicKey, nil
}

// keyMatches checks that key is the private half of the certificate's key.
func keyMatches(key crypto.PrivateKey, certPub crypto.PublicKey) error {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("a %T key cannot be checked against the pool's certificate", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(certPub) {
		return errors.New("does not match the pool's certificate in " + EnvToken + ": use the key the pool's CSR was made with (after `gantry pool reset`, the new one)")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// DockerFromEnv returns the Docker executor's settings from the
// environment getenv reads, or nil for the process executor, as mode
// (GANTRY_LAUNCHER_EXECUTOR) says: "docker", "process", or "" for docker
// where a Docker engine answers at DOCKER_HOST (or the default socket).
func DockerFromEnv(getenv settings.Getenv, mode string) (*executor.DockerConfig, error) {
	return dockerFromEnv(getenv, mode)
}

func dockerFromEnv(getenv settings.Getenv, mode string) (*executor.DockerConfig, error) {
	if err := settings.LauncherExecutor.Check(func(string) string { return mode }); err != nil {
		return nil, err
	}
	switch mode = strings.ToLower(strings.TrimSpace(mode)); mode {
	case ExecutorProcess:
		return nil, nil
	case ExecutorDocker:
	default: // unset
		cli, err := executor.Engine(settings.DockerHost.Value(getenv))
		if err != nil {
			return nil, nil
		}
		cli.Close()
	}
	// The engine's own defaults apply to what is unset.
	raw := func(v *settings.Var) string { s, _ := v.Lookup(getenv); return strings.TrimSpace(s) }
	d := &executor.DockerConfig{
		Host: raw(settings.DockerHost), DefaultImage: raw(settings.DefaultRunnerImage),
		Network: raw(settings.WorkerNetwork), Runtime: raw(settings.WorkerRuntime),
		User: raw(settings.WorkerUser), KeepWarm: true,
	}
	var errs []error
	for _, m := range []struct {
		name string
		into *[]executor.Mount
	}{{EnvExtraMounts, &d.Mounts}, {EnvROExtraMounts, &d.ReadOnlyMounts}, {EnvWOExtraMounts, &d.WriteMounts}} {
		mounts, err := executor.ParseMounts(getenv(m.name))
		if err == nil {
			err = executor.DockerConfig{Mounts: mounts}.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
		}
		*m.into = mounts
	}
	if err := (executor.DockerConfig{User: d.User, DefaultImage: d.DefaultImage}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s or %s: %w", EnvWorkerUser, EnvDefaultImage, err))
	}
	if dir := raw(settings.DockerConfigDir); dir != "" {
		auth, err := executor.LoadRegistryAuth(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvDockerConfig, err))
		}
		d.RegistryAuth = auth
	}
	return d, errors.Join(errs...)
}

// DefaultRepoCacheDir is where a worker whose work directory is workDir
// ("": the system's temporary directory) keeps its repository cache unless
// GANTRY_LAUNCHER_REPO_CACHE_DIR says otherwise.
func DefaultRepoCacheDir(workDir string) string {
	if workDir == "" {
		workDir = os.TempDir()
	}
	return filepath.Join(workDir, "gantry-repos")
}
