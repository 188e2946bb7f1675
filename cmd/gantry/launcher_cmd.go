package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/worker/launcher"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

// secretsFDEnv names the file descriptor a re-executed launcher reads its
// token and key from (see withoutSecrets).
var secretsFDEnv = settings.LauncherSecretsFD.Name

func newLauncherCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "launcher",
		Short: "Run one worker of a worker pool on this machine",
		Long: `Run one worker of a worker pool: it joins the pool with GANTRY_TOKEN (the pool
token gantry pool create or reset printed) and GANTRY_POOL_PRIVATE_KEY (base64 of
the PEM private key the pool's CSR was made with), registers, and runs the runs it
is assigned one at a time: in a container of the stack's runner image where a
Docker engine answers, otherwise as processes on this host, with the stack's
terraform or tofu from PATH. The token and key never reach a run: the launcher
re-executes itself without them in its environment.

OTEL_EXPORTER_OTLP_ENDPOINT (and the other standard OTEL_* variables) export
each run's span, in the trace the server sent with the assignment.

SIGTERM or SIGINT: the worker takes no new run, lets the current one finish
within the shutdown grace, fails it with a note if it cannot, and exits. A
cycle of the pool hands back a run that changed nothing yet; a reset makes the
launcher exit at once with an error: restart it with the new token and key.

The Docker executor's settings (DOCKER_HOST, GANTRY_WORKER_*, …) apply with
GANTRY_LAUNCHER_EXECUTOR=docker, or where a Docker engine answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			environ, err := withoutSecrets()
			if err != nil {
				return fmt.Errorf("launcher: %w", err)
			}
			// Nothing of this process, its memory and /proc/<pid>/environ
			// included, is readable by another process of its user.
			if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); e != 0 {
				return fmt.Errorf("launcher: make the process undumpable: %w", e)
			}
			log, err := newLogger(getenv)
			if err != nil {
				return err
			}
			// GANTRY_METADATA_* and the whitelisted variables are open-ended
			// names: the launcher reads the whole environment.
			cfg, err := launcher.FromEnv(environ, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			cfg.Logger, cfg.Version = log, binaryVersion()
			if cfg.Executor.Docker != nil {
				if err := ensureRunnerImage(cmd.Context(), cfg.Executor.Docker, cmd.ErrOrStderr()); err != nil {
					return fmt.Errorf("launcher: %w", err)
				}
			}
			traces, err := startTracing(cmd.Context(), getenv, "gantry-launcher")
			if err != nil {
				return err
			}
			defer stopTracing(traces, log)
			cfg.TracerProvider = traces.Provider()
			uploads := workerclient.New(cfg.Token.ServerURL, cfg.Token.PoolID, cfg.Token.PoolSecret, nil)
			l, err := launcher.New(cfg, uploads)
			if err != nil {
				return err
			}
			if err := l.Run(cmd.Context()); err != nil {
				return fmt.Errorf("launcher: %w", err)
			}
			return nil
		},
	}
}

// launcherSecrets are what a launcher hands to its re-executed self.
type launcherSecrets struct {
	Token string `json:"token"`
	Key   string `json:"key"`
}

// withoutSecrets returns the launcher's environment with its token and
// key. Started with them in its environment, the launcher re-executes
// itself (same process, same pid) without them, handing them over a pipe:
// a process's initial environment stays readable in /proc/<pid>/environ
// whatever it unsets, and the runs' processes are the launcher's children.
// Only the re-executed launcher returns.
func withoutSecrets() ([]string, error) {
	if fd, ok := settings.LauncherSecretsFD.Lookup(os.Getenv); ok {
		return readSecrets(fd)
	}
	token, key := settings.Token.Value(os.Getenv), settings.PoolPrivateKey.Value(os.Getenv)
	if token == "" && key == "" {
		return os.Environ(), nil // FromEnv says what is missing
	}
	data, err := json.Marshal(launcherSecrets{Token: token, Key: key})
	if err != nil {
		return nil, err
	}
	const pipeCapacity = 60 << 10 // written before the exec: it must fit the pipe
	if len(data) > pipeCapacity {
		return nil, fmt.Errorf("%s and %s are too large (%d bytes)", launcher.EnvToken, launcher.EnvPoolKey, len(data))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	w.Close()
	// The read end survives the exec: clear its close-on-exec flag.
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), syscall.F_SETFD, 0); e != 0 {
		return nil, fmt.Errorf("hand the secrets over: %w", e)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != launcher.EnvToken && name != launcher.EnvPoolKey && name != secretsFDEnv {
			env = append(env, kv)
		}
	}
	env = append(env, secretsFDEnv+"="+strconv.Itoa(int(r.Fd())))
	return nil, fmt.Errorf("re-execute without the secrets in the environment: %w", syscall.Exec(self, os.Args, env))
}

// readSecrets reads what withoutSecrets handed over on file descriptor fd
// and returns the environment with them, which only this process's memory
// holds.
func readSecrets(fd string) ([]string, error) {
	n, err := strconv.Atoi(fd)
	if err != nil {
		return nil, fmt.Errorf("%s=%q is not a file descriptor", secretsFDEnv, fd)
	}
	f := os.NewFile(uintptr(n), "launcher secrets")
	if f == nil {
		return nil, errors.New("no secrets were handed over")
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read the secrets handed over: %w", err)
	}
	var s launcherSecrets
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read the secrets handed over: %w", err)
	}
	if err := os.Unsetenv(secretsFDEnv); err != nil {
		return nil, err
	}
	env := os.Environ()
	if s.Token != "" {
		env = append(env, launcher.EnvToken+"="+s.Token)
	}
	if s.Key != "" {
		env = append(env, launcher.EnvPoolKey+"="+s.Key)
	}
	return env, nil
}
