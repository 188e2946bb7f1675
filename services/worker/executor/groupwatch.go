package executor

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// groupWatchScript is a shell that keeps the process groups of a run's
// commands (lines "+PGID" and "-PGID" on its standard input) and kills
// those left when its input ends without "done": the launcher died, even
// by SIGKILL, since only the launcher holds the pipe's other end.
const groupWatchScript = `g=
while IFS= read -r l; do
  case $l in
    +*) g="$g ${l#+}" ;;
    -*) n=; for p in $g; do [ "$p" = "${l#-}" ] || n="$n $p"; done; g=$n ;;
    done) exit 0 ;;
  esac
done
for p in $g; do kill -s KILL -- "-$p" 2>/dev/null; done`

// groupWatch makes a run's processes on the host die with the launcher:
// the parent-death signal reaches only a command's own process, not what
// it started in the background, nor terraform's providers.
type groupWatch struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	in  io.WriteCloser
}

// startGroupWatch starts the watch with sh, in a process group of its own
// (a signal to the launcher's group does not reach it).
func startGroupWatch(sh string) (*groupWatch, error) {
	cmd := &exec.Cmd{Path: sh, Args: []string{sh, "-c", groupWatchScript}, Env: []string{},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start the process group watch: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the process group watch: %w", err)
	}
	return &groupWatch{cmd: cmd, in: in}, nil
}

func (w *groupWatch) add(pgid int)    { w.send("+" + strconv.Itoa(pgid)) }
func (w *groupWatch) remove(pgid int) { w.send("-" + strconv.Itoa(pgid)) }

func (w *groupWatch) send(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = io.WriteString(w.in, line+"\n")
}

// stop ends the watch without killing anything.
func (w *groupWatch) stop() {
	w.send("done")
	w.in.Close()
	_ = w.cmd.Wait()
}
