package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/moby/api/pkg/stdcopy"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// agentScript is the main process of a run container: a shell that runs
// the commands the executor writes to its standard input, one script at a
// time, each ended by a line holding the nonce (the first line). Starting a
// command this way costs a few milliseconds, where an exec through the
// engine costs a hundred. Each script runs the command in a subshell with
// its own environment, kills whatever the command left running (kill -1
// reaches every process of the container but this one), and prints a NUL,
// the nonce and the exit status: the end of the command's output. When the
// executor's connection closes, even because the launcher died, the input
// ends and so does the container.
const agentScript = `IFS= read -r n || exit 0
while :; do
  s= e=1
  while IFS= read -r l; do
    if [ "$l" = "$n" ]; then e=0; break; fi
    s="$s$l
"
  done
  [ "$e" = 0 ] || exit 0
  eval "$s"
done`

// container is a run container waiting for commands, and a sandbox.
type container struct {
	b        *dockerBackend
	id       string
	image    string
	write    bool // the scope of its mounts
	ws       *workspace
	realDir  string            // ws.dir with symlinks resolved
	tools    map[string]string // the tools mounted, by name
	pathEnv  string            // PATH of its processes
	labels   map[string]string
	conn     client.HijackedResponse
	nonce    string
	parser   *markerParser
	streamed chan struct{} // closed when the container's output ended: it is gone
	// ownsWorkspace: the workspace was made for the container (started in
	// advance) and no run took it; removing the container removes it.
	ownsWorkspace bool

	mu     sync.Mutex
	cur    *dockerProc // the command under way
	killed bool
}

// operatorMounts are the mounts the operator configured for the
// containers of a scope: every container's, then the scope's own.
func (b *dockerBackend) operatorMounts(write bool) []Mount {
	scope := b.dcfg.ReadOnlyMounts
	if write {
		scope = b.dcfg.WriteMounts
	}
	return append(append([]Mount(nil), b.dcfg.Mounts...), scope...)
}

// startContainer creates and starts a container of image with the
// workspace, the tools and the scope's mounts, and attaches to it.
func (b *dockerBackend) startContainer(ctx context.Context, namePrefix, image string, write bool, ws *workspace, tools map[string]string, extra map[string]string) (*container, error) {
	imagePath, err := b.ensureImage(ctx, image)
	if err != nil {
		return nil, err
	}
	mounts := []mount.Mount{{Type: mount.TypeBind, Source: ws.dir, Target: ContainerWorkspace}}
	names := make([]string, 0, len(tools))
	for name := range tools {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: tools[name], Target: ContainerToolDir + "/" + name, ReadOnly: true})
	}
	for _, m := range b.operatorMounts(write) {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	labels := map[string]string{}
	for k, v := range b.labels {
		labels[k] = v
	}
	for k, v := range extra {
		if v != "" {
			labels[k] = v
		}
	}
	user := fmt.Sprintf("%d:%d", b.uid, b.gid)
	created, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &containertypes.Config{
			Image: image, Entrypoint: []string{"/bin/sh", "-c", agentScript}, User: user, WorkingDir: "/",
			OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
			Labels: labels,
		},
		HostConfig: &containertypes.HostConfig{
			NetworkMode: containertypes.NetworkMode(b.dcfg.Network), Runtime: b.dcfg.Runtime, Mounts: mounts,
			CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
		},
		Name: namePrefix + strings.ToLower(rand.Text()[:12]),
	})
	if err != nil {
		return nil, fmt.Errorf("create a container of the runner image %s: %w", image, err)
	}
	c := &container{b: b, id: created.ID, image: image, write: write, ws: ws, tools: tools, labels: labels,
		pathEnv: imagePath, streamed: make(chan struct{}), nonce: rand.Text()}
	if !slices.Contains(filepath.SplitList(imagePath), ContainerToolDir) {
		c.pathEnv = ContainerToolDir + ":" + imagePath
	}
	c.realDir, _ = filepath.EvalSymlinks(ws.dir)
	fail := func(err error) (*container, error) {
		rctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
		defer cancel()
		_, _ = b.cli.ContainerRemove(rctx, c.id, client.ContainerRemoveOptions{Force: true})
		return nil, err
	}
	attached, err := b.cli.ContainerAttach(ctx, c.id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail(fmt.Errorf("attach to the run container: %w", err))
	}
	c.conn = attached.HijackedResponse
	c.parser = &markerParser{marker: []byte("\x00" + c.nonce + " "), out: c.output, end: c.ended}
	go c.demux()
	if _, err := b.cli.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		c.conn.Close()
		return fail(fmt.Errorf("start a container of the runner image %s (it needs /bin/sh): %w", image, err))
	}
	if _, err := io.WriteString(c.conn.Conn, c.nonce+"\n"); err != nil {
		c.conn.Close()
		return fail(fmt.Errorf("talk to the run container: %w", err))
	}
	return c, nil
}

func (c *container) short() string { return c.id[:12] }

func (c *container) hasTool(name string) bool { _, ok := c.tools[name]; return ok }

// path maps a path of the workspace on the host to the container's.
func (c *container) path(hostPath string) string {
	for _, base := range []string{c.ws.dir, c.realDir} {
		if base == "" {
			continue
		}
		if rel, err := filepath.Rel(base, hostPath); err == nil && filepath.IsLocal(rel) {
			return path.Join(ContainerWorkspace, filepath.ToSlash(rel))
		}
		if hostPath == base {
			return ContainerWorkspace
		}
	}
	return hostPath
}

func (c *container) searchPath() string { return c.pathEnv }

// sharedPath maps a path of the container under one of the operator's
// mounts to the host's; the deepest mount wins, as it does in the
// container. Anything else (the workspace, the image's own files) is the
// run's alone.
func (c *container) sharedPath(p string) (string, bool) {
	best, host := -1, ""
	for _, m := range c.b.operatorMounts(c.write) {
		rel, err := filepath.Rel(m.Target, p)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		if len(m.Target) > best {
			best, host = len(m.Target), filepath.Join(m.Source, rel)
		}
	}
	return host, best >= 0
}

// close removes the container in the background and starts the next one
// in advance.
func (c *container) close() {
	c.b.remove(c)
	c.b.refill(c.labels[LabelWorker])
}

// start writes c's script to the container's shell.
func (c *container) start(cmd command) (proc, io.ReadCloser, error) {
	var prog string
	switch {
	case cmd.prog == "sh":
		prog = "sh"
	case c.hasTool(cmd.prog):
		prog = ContainerToolDir + "/" + cmd.prog
	default:
		return nil, nil, fmt.Errorf("%s does not run in the container", cmd.prog)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "( cd %s || exit 126\n", shellQuote(c.path(cmd.dir)))
	for _, kv := range cmd.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&s, "export %s=%s\n", k, shellQuote(v))
	}
	s.WriteString("exec " + shellQuote(prog))
	for _, a := range cmd.args {
		s.WriteString(" " + shellQuote(a))
	}
	s.WriteString("\n) </dev/null 2>&1\nr=$?\nkill -s KILL -1 2>/dev/null\nprintf '\\000%s %d\\n' \"$n\" \"$r\"\n")
	s.WriteString(c.nonce + "\n")

	pr, pw := io.Pipe()
	p := &dockerProc{c: c, out: pw, done: make(chan struct{})}
	c.mu.Lock()
	select {
	case <-c.streamed:
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("the run container %s has ended", c.short())
	default:
	}
	if c.cur != nil {
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("the run container %s is busy", c.short())
	}
	c.cur = p
	c.mu.Unlock()
	if _, err := io.WriteString(c.conn.Conn, s.String()); err != nil {
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("talk to the run container: %w", err)
	}
	return p, pr, nil
}

// demux reads the container's output until it ends: stdout to the
// command under way, the shell's own stderr to the launcher's log.
func (c *container) demux() {
	_, err := stdcopy.StdCopy(c.parser, logWriter{c}, c.conn.Reader)
	c.mu.Lock()
	p := c.cur
	c.cur = nil
	killed := c.killed
	close(c.streamed)
	c.mu.Unlock()
	if p != nil {
		if killed {
			p.finish(exitSignalBase+int(syscall.SIGKILL), nil)
		} else {
			p.finish(ExitNoProcess, fmt.Errorf("the run container %s ended: %v", c.short(), err))
		}
	}
}

// output passes a command's output on; output between commands (there
// should be none) is dropped.
func (c *container) output(b []byte) {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p != nil {
		_, _ = p.out.Write(b) // a reader that gave up (drain timeout) drops it
	}
}

// ended ends the command under way with its exit status.
func (c *container) ended(code int) {
	c.mu.Lock()
	p := c.cur
	c.cur = nil
	c.mu.Unlock()
	if p != nil {
		p.finish(code, nil)
	}
}

// logWriter logs what the container's shell itself writes to stderr.
type logWriter struct{ c *container }

func (w logWriter) Write(b []byte) (int, error) {
	w.c.b.log.Warn("run container", "container", w.c.short(), "stderr", string(bytes.TrimSpace(b)))
	return len(b), nil
}

// dockerProc is a command under way in a container.
type dockerProc struct {
	c    *container
	out  *io.PipeWriter
	done chan struct{}
	once sync.Once
	code int
	err  error
}

func (p *dockerProc) finish(code int, err error) {
	p.once.Do(func() {
		p.code, p.err = code, err
		p.out.Close()
		close(p.done)
	})
}

func (p *dockerProc) exited() <-chan struct{} { return p.done }

// alive: once the command's status is in, the container's shell has killed
// whatever it left.
func (p *dockerProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *dockerProc) result() (int, error) { return p.code, p.err }

// signal sends SIGINT to every process of the container but its shell, and
// SIGKILL by killing the container: nothing more runs in it after that.
func (p *dockerProc) signal(sig syscall.Signal) {
	if !p.alive() {
		return
	}
	c := p.c
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	if sig == syscall.SIGKILL {
		c.mu.Lock()
		c.killed = true
		c.mu.Unlock()
		if _, err := c.b.cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			c.b.log.Warn("could not kill a run container", "container", c.short(), "err", err)
		}
		return
	}
	ex, err := c.b.cli.ExecCreate(ctx, c.id, client.ExecCreateOptions{
		User: fmt.Sprintf("%d:%d", c.b.uid, c.b.gid), Cmd: []string{"/bin/sh", "-c", "kill -s " + signalName(sig) + " -1"},
	})
	if err == nil {
		_, err = c.b.cli.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
	}
	if err != nil {
		c.b.log.Warn("could not signal a run container's processes", "container", c.short(), "signal", sig, "err", err)
	}
}

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGINT {
		return "INT"
	}
	return strconv.Itoa(int(sig))
}

// markerParser splits a container's output into the commands' outputs: a
// command's output ends with a NUL, the container's nonce, a space, its exit
// status and a newline. A NUL that does not start that is output.
type markerParser struct {
	marker []byte // NUL, nonce, space
	held   []byte // what may be the start of an end marker
	out    func([]byte)
	end    func(code int)
}

// maxStatusDigits bounds the exit status of an end marker.
const maxStatusDigits = 4

func (m *markerParser) Write(p []byte) (int, error) {
	data := append(m.held, p...)
	m.held = nil
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			m.out(data)
			break
		}
		if i > 0 {
			m.out(data[:i])
			data = data[i:]
		}
		n, code, state := m.match(data)
		switch state {
		case markerComplete:
			m.end(code)
			data = data[n:]
		case markerPartial:
			m.held = append([]byte(nil), data...)
			return len(p), nil
		default:
			m.out(data[:1])
			data = data[1:]
		}
	}
	return len(p), nil
}

const (
	markerNone = iota
	markerPartial
	markerComplete
)

// match reports whether data, which starts with a NUL, starts with an end
// marker, might (it is cut short), or does not.
func (m *markerParser) match(data []byte) (n, code, state int) {
	if len(data) < len(m.marker) {
		if bytes.HasPrefix(m.marker, data) {
			return 0, 0, markerPartial
		}
		return 0, 0, markerNone
	}
	if !bytes.HasPrefix(data, m.marker) {
		return 0, 0, markerNone
	}
	rest := data[len(m.marker):]
	for j, ch := range rest {
		switch {
		case ch == '\n' && j > 0:
			code, _ := strconv.Atoi(string(rest[:j]))
			return len(m.marker) + j + 1, code, markerComplete
		case ch < '0' || ch > '9' || j >= maxStatusDigits:
			return 0, 0, markerNone
		}
	}
	return 0, 0, markerPartial
}
