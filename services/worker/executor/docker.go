package executor

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
)

// Labels the Docker executor puts on every container it starts. A launcher
// finds the containers a dead launcher of its host left by them
// (RemoveOrphans).
const (
	LabelLauncher = "gantry.launcher"       // the launcher process's random id
	LabelHost     = "gantry.host"           // the host's name
	LabelPID      = "gantry.launcher.pid"   // the launcher's process id
	LabelStarted  = "gantry.launcher.start" // the launcher's start, in clock ticks since boot (from /proc)
	LabelPool     = "gantry.pool"           // set by the launcher through DockerConfig.Labels
	LabelWorker   = "gantry.worker"
	// LabelRun is not on a container started in advance (KeepWarm), whose
	// labels were set before its run was known: its name, gantry-<run
	// id>-…, says the run (ContainerName).
	LabelRun = "gantry.run"
)

// ContainerName is the name prefix of run runID's containers.
func ContainerName(runID string) string { return "gantry-" + runID + "-" }

// engineTimeout bounds one call to the engine that does not wait for a
// command.
const engineTimeout = 2 * time.Minute

// dockerBackend runs each run's commands in containers (see DockerConfig).
type dockerBackend struct {
	cfg     Config
	dcfg    DockerConfig
	cli     *client.Client
	log     *slog.Logger
	labels  map[string]string // the executor's own and DockerConfig.Labels
	gateway string            // where the containers reach the host
	uid     int
	gid     int

	mu       sync.Mutex
	warm     *container // started in advance for the next run (KeepWarm)
	warming  bool
	closed   bool
	removing sync.WaitGroup // removals of containers under way
}

// newDockerBackend connects to the engine and checks, once, what every run
// would need: the network, its gateway address and the runtime.
func newDockerBackend(cfg Config, log *slog.Logger) (*dockerBackend, error) {
	d := *cfg.Docker
	if d.Network == "" {
		d.Network = DefaultNetwork
	}
	if d.DefaultImage == "" {
		d.DefaultImage = DefaultRunnerImage
	}
	cli, err := Engine(d.Host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	b := &dockerBackend{cfg: cfg, dcfg: d, cli: cli, log: log}
	b.uid, b.gid = d.user()
	if err := b.check(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	b.labels = map[string]string{}
	for k, v := range d.Labels {
		b.labels[k] = v
	}
	for k, v := range launcherIdentity() {
		b.labels[k] = v
	}
	return b, nil
}

// Engine returns a client of the Docker engine at host ("" is the default
// socket) that speaks the engine's API version, and checks that it answers.
func Engine(host string) (*client.Client, error) {
	if host == "" {
		host = client.DefaultDockerHost
	}
	cli, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker engine %s: %w", host, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine %s does not answer: %w", host, err)
	}
	return cli, nil
}

// check refuses a network that does not exist or that the launcher cannot
// serve the run's state on, and a runtime the engine does not have.
func (b *dockerBackend) check(ctx context.Context) error {
	var errs []error
	nw, err := b.cli.NetworkInspect(ctx, b.dcfg.Network, client.NetworkInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		errs = append(errs, fmt.Errorf("network %q does not exist on the docker engine", b.dcfg.Network))
	case err != nil:
		errs = append(errs, fmt.Errorf("network %q: %w", b.dcfg.Network, err))
	case nw.Network.Driver == "host":
		b.gateway = "127.0.0.1"
	case nw.Network.Driver == "null":
		errs = append(errs, fmt.Errorf("network %q has no network: terraform could not reach the state backend", b.dcfg.Network))
	default:
		var subnets []netip.Prefix
		for _, c := range nw.Network.IPAM.Config {
			subnets = append(subnets, c.Subnet)
		}
		b.gateway = hostAddressIn(subnets)
		if b.gateway == "" {
			errs = append(errs, fmt.Errorf("network %q has no gateway address, where the launcher would serve the run's state to its containers", b.dcfg.Network))
		}
	}
	if b.dcfg.Runtime != "" {
		info, err := b.cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("runtime %q: %w", b.dcfg.Runtime, err))
		} else if _, ok := info.Info.Runtimes[b.dcfg.Runtime]; !ok {
			var have []string
			for name := range info.Info.Runtimes {
				have = append(have, name)
			}
			errs = append(errs, fmt.Errorf("runtime %q is not one of the docker engine's (%s)", b.dcfg.Runtime, strings.Join(have, ", ")))
		}
	}
	return errors.Join(errs...)
}

// hostAddressIn returns an address of this host inside one of subnets (a
// bridge network's gateway, which the engine does not always report), IPv4
// first; "" if there is none.
func hostAddressIn(subnets []netip.Prefix) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var found []netip.Addr
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipnet.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		for _, p := range subnets {
			if p.IsValid() && p.Contains(ip) {
				found = append(found, ip)
			}
		}
	}
	slices.SortStableFunc(found, func(a, b netip.Addr) int {
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return 0
	})
	if len(found) == 0 {
		return ""
	}
	return found[0].String()
}

// GatewayAddress is the address on this host where the run containers
// reach the host (the network's gateway; 127.0.0.1 on the host network),
// or "" for the process executor. The launcher serves each run's state
// there.
func (e *Executor) GatewayAddress() string {
	if b, ok := e.backend.(*dockerBackend); ok {
		return b.gateway
	}
	return ""
}

// launcherIdentity labels the containers of this process.
func launcherIdentity() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		LabelLauncher: rand.Text()[:16],
		LabelHost:     host,
		LabelPID:      strconv.Itoa(os.Getpid()),
		LabelStarted:  processStart(os.Getpid()),
	}
}

// processStart is when process pid started, in clock ticks since boot
// (field 22 of /proc/<pid>/stat), "" if it does not exist. With the pid,
// it tells a live launcher from a later process that got its pid.
func processStart(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// RemoveOrphans removes the containers that launchers of this host that no
// longer run left behind (a launcher killed with SIGKILL cannot remove its
// own), and returns how many. The process executor has none.
func (e *Executor) RemoveOrphans(ctx context.Context) (int, error) {
	b, ok := e.backend.(*dockerBackend)
	if !ok {
		return 0, nil
	}
	list, err := b.cli.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", LabelHost+"="+b.labels[LabelHost]),
	})
	if err != nil {
		return 0, fmt.Errorf("list the containers of dead launchers: %w", err)
	}
	n := 0
	for _, c := range list.Items {
		pid, err := strconv.Atoi(c.Labels[LabelPID])
		if err == nil && processStart(pid) == c.Labels[LabelStarted] {
			continue // its launcher lives
		}
		if _, err := b.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return n, fmt.Errorf("remove container %s of a dead launcher: %w", c.ID[:12], err)
		}
		b.log.Info("removed a container of a dead launcher", "container", c.ID[:12], "run_id", c.Labels[LabelRun], "launcher", c.Labels[LabelLauncher])
		n++
	}
	return n, nil
}

// WarmUp starts a container of the default image for the next run of
// worker workerID when DockerConfig.KeepWarm is set; after each run, the
// executor starts the next one itself. It does nothing for the process
// executor.
func (e *Executor) WarmUp(workerID string) {
	if b, ok := e.backend.(*dockerBackend); ok {
		b.refill(workerID)
	}
}

func (b *dockerBackend) sameSandbox() bool {
	return len(b.dcfg.ReadOnlyMounts) == 0 && len(b.dcfg.WriteMounts) == 0
}

// newWorkspace hands over the workspace of the container started in
// advance when it suits the run; open then uses that container.
func (b *dockerBackend) newWorkspace(runID string) (*workspace, error) {
	b.mu.Lock()
	warm := b.warm
	b.warm = nil
	b.mu.Unlock()
	if warm != nil {
		warm.ownsWorkspace = false // the run's now: it removes it
		warm.ws.ready = warm
		return warm.ws, nil
	}
	ws, err := newWorkspace(b.cfg.WorkDir, runID)
	if err != nil {
		return nil, err
	}
	return ws, nil
}

// open returns a container of the run's image, with the scope's mounts and
// the run's workspace, started and waiting for commands: the one started in
// advance if it suits, a new one otherwise.
func (b *dockerBackend) open(ctx context.Context, x *execution, write bool) (sandbox, error) {
	image := x.job.RunnerImage
	if image == "" {
		image = b.dcfg.DefaultImage
	}
	if x.ws.ready != nil {
		c := x.ws.ready.(*container)
		x.ws.ready = nil
		if c.image == image && (c.write == write || b.sameSandbox()) && c.hasTool(string(x.job.Tool)) {
			if err := b.handOver(x.ws); err != nil {
				b.remove(c)
				return nil, err
			}
			b.rename(c, x.job.RunID)
			x.log.Debug("using the container started in advance", "container", c.short())
			return c, nil
		}
		b.remove(c)
	}
	tools, err := staticTools(x.cfg.Path)
	if err != nil {
		return nil, err
	}
	if _, ok := tools[string(x.job.Tool)]; !ok {
		return nil, fmt.Errorf("the stack's tool: %s is not installed on this worker", x.job.Tool)
	}
	if err := b.handOver(x.ws); err != nil {
		return nil, err
	}
	labels := map[string]string{LabelRun: x.job.RunID, LabelWorker: x.job.WorkerID}
	c, err := b.startContainer(ctx, ContainerName(x.job.RunID), image, write, x.ws, tools, labels)
	if err != nil {
		return nil, err
	}
	x.log.Debug("container started", "container", c.short(), "image", image)
	return c, nil
}

// handOver gives the workspace to the containers' user, who must write in
// it; the launcher reads and removes it as root.
func (b *dockerBackend) handOver(ws *workspace) error {
	if b.uid == os.Geteuid() && b.gid == os.Getegid() {
		return nil
	}
	err := filepath.WalkDir(ws.dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, b.uid, b.gid)
	})
	if err != nil {
		return fmt.Errorf("hand the workspace to the containers' user %d:%d: %w", b.uid, b.gid, err)
	}
	return nil
}

// refill starts a container of the default image in advance, in the
// background, unless one is waiting or being started.
func (b *dockerBackend) refill(workerID string) {
	if !b.dcfg.KeepWarm {
		return
	}
	b.mu.Lock()
	if b.closed || b.warm != nil || b.warming {
		b.mu.Unlock()
		return
	}
	b.warming = true
	b.removing.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.removing.Done()
		c, err := b.startWarm(workerID)
		b.mu.Lock()
		b.warming = false
		if err == nil && b.closed {
			b.mu.Unlock()
			b.removeNow(c)
			return
		}
		if err == nil {
			b.warm = c
		}
		b.mu.Unlock()
		if err != nil {
			b.log.Warn("could not start a container in advance", "image", b.dcfg.DefaultImage, "err", err)
		}
	}()
}

func (b *dockerBackend) startWarm(workerID string) (*container, error) {
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	tools, err := staticTools(b.cfg.Path)
	if err != nil {
		return nil, err
	}
	ws, err := newWorkspace(b.cfg.WorkDir, "next")
	if err != nil {
		return nil, err
	}
	if err := b.handOver(ws); err != nil {
		_ = removeAll(ws.dir)
		return nil, err
	}
	// Proposed and tracked runs start with read-only phases; tasks are all
	// write phases. Without scope mounts, the container serves both.
	c, err := b.startContainer(ctx, "gantry-next-", b.dcfg.DefaultImage, false, ws, tools, map[string]string{LabelWorker: workerID})
	if err != nil {
		_ = removeAll(ws.dir)
		return nil, err
	}
	c.ownsWorkspace = true
	return c, nil
}

// rename names a container started in advance after the run that took
// it, in the background: a run does not wait for it.
func (b *dockerBackend) rename(c *container, runID string) {
	b.removing.Add(1)
	go func() {
		defer b.removing.Done()
		ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
		defer cancel()
		if _, err := b.cli.ContainerRename(ctx, c.id, client.ContainerRenameOptions{NewName: ContainerName(runID) + c.short()}); err != nil {
			b.log.Warn("could not name a run container after its run", "container", c.short(), "run_id", runID, "err", err)
		}
	}()
}

// remove removes c in the background: a run does not wait for it.
func (b *dockerBackend) remove(c *container) {
	b.removing.Add(1)
	go func() {
		defer b.removing.Done()
		b.removeNow(c)
	}()
}

func (b *dockerBackend) removeNow(c *container) {
	c.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	if _, err := b.cli.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		b.log.Error("could not remove a run container", "container", c.short(), "err", err)
	}
	if c.ownsWorkspace {
		if err := removeAll(c.ws.dir); err != nil {
			b.log.Error("could not remove a workspace", "dir", c.ws.dir, "err", err)
		}
	}
}

// close removes the container kept for the next run and waits for every
// removal under way.
func (b *dockerBackend) close() {
	b.mu.Lock()
	b.closed = true
	warm := b.warm
	b.warm = nil
	b.mu.Unlock()
	if warm != nil {
		b.removeNow(warm)
	}
	b.removing.Wait()
	b.cli.Close()
}

// ensureImage checks that image is on the engine, pulling it (with the
// registry's credentials, if any) when it is not, and returns its PATH.
func (b *dockerBackend) ensureImage(ctx context.Context, image string) (string, error) {
	img, err := b.cli.ImageInspect(ctx, image)
	if cerrdefs.IsNotFound(err) {
		if perr := b.pull(ctx, image); perr != nil {
			return "", fmt.Errorf("the runner image %s is not on this worker and could not be pulled: %v", image, perr)
		}
		img, err = b.cli.ImageInspect(ctx, image)
	}
	if err != nil {
		return "", fmt.Errorf("the runner image %s: %w", image, err)
	}
	imagePath := DefaultPath
	if img.Config != nil {
		for _, kv := range img.Config.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok && v != "" {
				imagePath = v
			}
		}
	}
	return imagePath, nil
}

func (b *dockerBackend) pull(ctx context.Context, image string) error {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("not an image reference: %w", err)
	}
	opts := client.ImagePullOptions{RegistryAuth: b.dcfg.RegistryAuth[reference.Domain(named)]}
	resp, err := b.cli.ImagePull(ctx, reference.TagNameOnly(named).String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return resp.Wait(ctx)
}

// staticTools finds terraform and tofu in path and returns those that are
// statically linked, which any runner image can run.
func staticTools(path string) (map[string]string, error) {
	out := map[string]string{}
	var dynamic []string
	for _, name := range []string{"terraform", "tofu"} {
		p, err := lookPath(name, path)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		if !isStatic(real) {
			dynamic = append(dynamic, real)
			continue
		}
		out[name] = real
	}
	if len(out) == 0 && len(dynamic) > 0 {
		return nil, fmt.Errorf("%s is dynamically linked: the Docker executor mounts the worker's terraform or tofu into the runner image, which needs a static build (the official releases are)", strings.Join(dynamic, ", "))
	}
	return out, nil
}

// isStatic reports whether the ELF program at p needs no dynamic loader.
func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
