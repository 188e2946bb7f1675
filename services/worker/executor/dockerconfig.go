package executor

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Defaults of DockerConfig.
const (
	// DefaultRunnerImage is the image of stacks without a runner image of
	// their own when DockerConfig.DefaultImage is empty: the image the
	// project builds locally (services/worker/runnerimage).
	DefaultRunnerImage = "gantry/runner:1"
	// DefaultNetwork is the network of the run containers.
	DefaultNetwork = "bridge"
	// DefaultUser is the user the run containers run as when the launcher
	// runs as root; a launcher of another user runs them as itself.
	DefaultUser = "10001:10001"
)

// Paths inside a run container.
const (
	// ContainerWorkspace is where the run's workspace is mounted: HOME is
	// ContainerWorkspace/home, the checkout ContainerWorkspace/work/source.
	ContainerWorkspace = "/mnt/workspace"
	// ContainerToolDir holds the worker's terraform and tofu, mounted
	// read-only; it comes first in PATH.
	ContainerToolDir = "/opt/gantry/bin"
)

// DockerConfig makes the executor run each run's commands in a container
// of the stack's runner image (protocol.Job.RunnerImage, or DefaultImage).
// Cloning stays on the worker's host; the container gets the run's
// workspace mounted at ContainerWorkspace and the worker's terraform and
// tofu read-only in ContainerToolDir, and runs the hooks, the task's
// command and the tool with sh, as an unprivileged user, with no
// capabilities. It sees nothing else of the host but Mounts and the scope's
// mounts; not the launcher's environment, its key, the engine's socket or
// another run's workspace.
type DockerConfig struct {
	// Host is the engine's address (unix:///var/run/docker.sock,
	// tcp://host:2375); "" is the default socket.
	Host string
	// DefaultImage is the runner image of stacks without one; "" is
	// DefaultRunnerImage.
	DefaultImage string
	// Network is the network the containers join; "" is DefaultNetwork.
	// It must exist, and have a gateway address on this host (the
	// launcher serves the run's state there, see Executor.GatewayAddress),
	// unless it is "host".
	Network string
	// Runtime is the engine's runtime for the containers (runc, runsc…);
	// "" is the engine's default. The engine must have it.
	Runtime string
	// User is "uid:gid", numeric, that the containers run as; "" is
	// DefaultUser when the launcher runs as root, the launcher's own
	// otherwise. The workspace is handed to it (which needs root unless it
	// is the launcher's own).
	User string
	// Mounts are bind mounts of every run container; ReadOnlyMounts only
	// of the containers of read-only phases (proposed runs, the planning
	// of tracked runs), WriteMounts only of those of write phases (see
	// WritePhase).
	Mounts, ReadOnlyMounts, WriteMounts []Mount
	// RegistryAuth maps a registry's host ("docker.io", "ghcr.io") to the
	// credentials to pull runner images from it, encoded as the engine
	// takes them (see LoadRegistryAuth).
	RegistryAuth map[string]string
	// Labels are added to every container, beside the executor's own
	// (launcher, host, worker, run).
	Labels map[string]string
	// KeepWarm keeps one container of the default image started and
	// waiting for the next run, so that a run does not wait for the engine
	// to start its container.
	KeepWarm bool
}

// Mount is a bind mount of a host path into the run containers.
type Mount struct {
	Source   string // absolute path on the host
	Target   string // absolute path in the container
	ReadOnly bool
}

func (m Mount) String() string {
	s := m.Source + ":" + m.Target
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// ParseMounts reads a comma-separated list of mounts, each
// /host/path:/container/path with an optional :ro or :rw.
func ParseMounts(list string) ([]Mount, error) {
	var out []Mount
	var errs []error
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		m := Mount{}
		switch {
		case len(parts) == 2:
		case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
			m.ReadOnly = parts[2] == "ro"
		default:
			errs = append(errs, fmt.Errorf("%q is not /host/path:/container/path[:ro]", entry))
			continue
		}
		m.Source, m.Target = parts[0], parts[1]
		out = append(out, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// engineSockets are the engine's usual sockets: a container with one of
// them mounted controls the engine, and so the host.
var engineSockets = []string{"/var/run/docker.sock", "/run/docker.sock"}

// checkMount refuses a mount that is not absolute on both sides, whose
// source does not exist, that hands the container the engine's socket, or
// whose target is where the executor mounts the workspace or the tools.
func checkMount(m Mount) error {
	if !filepath.IsAbs(m.Source) || !path.IsAbs(m.Target) {
		return fmt.Errorf("%s: both paths must be absolute", m)
	}
	real, err := filepath.EvalSymlinks(m.Source)
	if err != nil {
		return fmt.Errorf("%s: the host path: %w", m, err)
	}
	for _, sock := range engineSockets {
		if filepath.Clean(m.Source) == sock || real == sock {
			return fmt.Errorf("%s: a run container never gets the engine's socket", m)
		}
	}
	target := path.Clean(m.Target)
	for _, reserved := range []string{ContainerWorkspace, ContainerToolDir} {
		if target == "/" || target == reserved || strings.HasPrefix(target, reserved+"/") || strings.HasPrefix(reserved, target+"/") {
			return fmt.Errorf("%s: the container path clashes with %s, which the executor mounts", m, reserved)
		}
	}
	return nil
}

var userPattern = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// Validate reports every problem of c at once.
func (c DockerConfig) Validate() error {
	var errs []error
	if c.User != "" && !userPattern.MatchString(c.User) {
		errs = append(errs, fmt.Errorf("user %q must be numeric uid:gid", c.User))
	} else if c.User != "" {
		uid, gid := splitUser(c.User)
		if uid == 0 {
			errs = append(errs, errors.New("user: the containers never run as root"))
		}
		if os.Geteuid() != 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
			errs = append(errs, fmt.Errorf("user %s: the launcher runs as uid %d, not root, and cannot hand the run's workspace to another user: leave it unset to use the launcher's own", c.User, os.Geteuid()))
		}
	}
	for _, list := range []struct {
		name   string
		mounts []Mount
	}{{"mounts", c.Mounts}, {"read-only mounts", c.ReadOnlyMounts}, {"write mounts", c.WriteMounts}} {
		for _, m := range list.mounts {
			if err := checkMount(m); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", list.name, err))
			}
		}
	}
	if strings.ContainsFunc(c.DefaultImage, func(r rune) bool { return r <= ' ' }) {
		errs = append(errs, fmt.Errorf("default image %q must not contain spaces", c.DefaultImage))
	}
	return errors.Join(errs...)
}

// user returns the uid and gid the containers run as.
func (c DockerConfig) user() (int, int) {
	switch {
	case c.User != "":
		return splitUser(c.User)
	case os.Geteuid() == 0:
		return splitUser(DefaultUser)
	default:
		return os.Geteuid(), os.Getegid()
	}
}

func splitUser(s string) (int, int) {
	u, g, _ := strings.Cut(s, ":")
	uid, _ := strconv.Atoi(u)
	gid, _ := strconv.Atoi(g)
	return uid, gid
}

// dockerConfigFile is the part of a Docker client configuration
// (config.json) the executor reads.
type dockerConfigFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// LoadRegistryAuth reads the registry credentials of a Docker client
// configuration directory (GANTRY_DOCKER_CONFIG_DIR, filled by `docker
// login`): its config.json's "auths", keyed by registry host, encoded as the
// engine takes them for a pull. Credential helpers are refused: the
// launcher reads credentials only from the file.
func LoadRegistryAuth(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the Docker configuration: %w", err)
	}
	var f dockerConfigFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	if f.CredsStore != "" || len(f.CredHelpers) > 0 {
		return nil, fmt.Errorf("%s uses a credential helper: log in with credentials stored in the file (docker login with no credsStore)", filepath.Join(dir, "config.json"))
	}
	out := map[string]string{}
	for registry, a := range f.Auths {
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("the credentials of %s are not base64", registry)
			}
			var ok bool
			if user, pass, ok = strings.Cut(string(raw), ":"); !ok {
				return nil, fmt.Errorf("the credentials of %s are not user:password", registry)
			}
		}
		enc, err := json.Marshal(map[string]string{
			"username": user, "password": pass, "identitytoken": a.IdentityToken, "serveraddress": registry,
		})
		if err != nil {
			return nil, err
		}
		out[registryHost(registry)] = base64.URLEncoding.EncodeToString(enc)
	}
	return out, nil
}

// registryHost is the host part of a registry as config.json names it
// ("https://index.docker.io/v1/" is docker.io).
func registryHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	if s == "index.docker.io" || s == "registry-1.docker.io" {
		return "docker.io"
	}
	return s
}
