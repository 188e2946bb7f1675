package executor

import (
	"context"
	"io"
	"syscall"
)

// A sandbox is where the commands of a run's phases execute: processes on
// the worker's host (process executor) or a container (Docker executor).
// The executor's phases, hooks, masking and timeouts are the same for both;
// only starting, signalling and waiting for a command differ. git always
// runs on the host: cloning needs the worker's network and credentials, and
// the runner image need not have git.
type sandbox interface {
	// path returns where the sandbox's processes find hostPath, a path in
	// the run's workspace.
	path(hostPath string) string
	// searchPath is the PATH of the run's processes.
	searchPath() string
	// sharedPath returns where the host sees p, a path of the sandbox's
	// processes, when p is on storage other runs may share (the host's
	// filesystem, an operator's mount), and false when it is the run's
	// alone.
	sharedPath(p string) (string, bool)
	// start starts c. Its output, stdout and stderr together in the order
	// written, is read from the returned reader, which ends once the
	// command and everything it started are done.
	start(c command) (proc, io.ReadCloser, error)
	// close ends whatever still runs in the sandbox and releases it.
	close()
}

// proc is a command under way in a sandbox.
type proc interface {
	// exited is closed when the command's own process has ended.
	exited() <-chan struct{}
	// signal sends sig (SIGINT or SIGKILL) to every process the command
	// started, wherever it is in the command's tree.
	signal(sig syscall.Signal)
	// alive reports whether a process the command started still runs.
	alive() bool
	// result is, once exited is closed, the command's exit status (128+N
	// when signal N ended it) and an error when the status could not be had.
	result() (int, error)
}

// backend makes the sandboxes of runs. The process backend runs every
// command on the host; the Docker backend runs a run's commands in a
// container of the stack's runner image (see docker.go).
type backend interface {
	// newWorkspace returns a fresh, empty workspace for run runID.
	newWorkspace(runID string) (*workspace, error)
	// open returns the sandbox for the phases of x that have the given
	// scope (write: see WritePhase), once ws holds the run's files. It is
	// called at the end of PREPARING or PREPARING_APPLY, and again when
	// a phase of the other scope needs other mounts.
	open(ctx context.Context, x *execution, write bool) (sandbox, error)
	// sameSandbox reports whether phases of both scopes can share one
	// sandbox.
	sameSandbox() bool
	// close releases what the backend keeps between runs.
	close()
}
