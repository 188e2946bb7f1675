package pgserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
)

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path is 108 bytes with NUL).
const maxSocketPath = 107

// logFileName is postgres' stdout and stderr inside the data dir, appended to across starts.
const logFileName = "postgres.log"

// socketDir returns where postgres puts its Unix socket: the data dir, so clusters never share
// /var/run/postgresql; or "" (no socket, TCP only) when the socket path would be too long,
// as deep temporary directories can make it.
func socketDir(dataDir string) string {
	if len(dataDir)+len("/.s.PGSQL.65535") > maxSocketPath {
		return ""
	}
	return dataDir
}

// postgresCommand builds the postmaster command line. The caller decides how it is tied to our
// lifetime (Pdeathsig) and where its output goes.
func postgresCommand(cfg Config, u osUser, port int) *exec.Cmd {
	args := []string{"-D", cfg.DataDir, "-p", strconv.Itoa(port)}
	settings := cfg.serverSettings(socketDir(cfg.DataDir))
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		args = append(args, "-c", name+"="+settings[name])
	}
	cmd := exec.Command(cfg.binary("postgres"), args...)
	cmd.Dir = cfg.DataDir
	cmd.Env = childEnv()
	cmd.SysProcAttr = u.sysProcAttr()
	return cmd
}

// openLog opens the log for appending and returns it with its current size, where this start's
// output begins. When the cluster runs as another account the file is given to it, so that a
// later run as that account can still append.
func openLog(dataDir string, u osUser) (*os.File, int64, error) {
	path := filepath.Join(dataDir, logFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open postgres log %s: %w", path, err)
	}
	if u.switchTo {
		if err := f.Chown(int(u.uid), int(u.gid)); err != nil {
			_ = f.Close()
			return nil, 0, fmt.Errorf("give postgres log %s to user %s: %w", path, u.name, err)
		}
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("stat postgres log %s: %w", path, err)
	}
	return f, info.Size(), nil
}

// freePort asks the kernel for a free loopback port. Another process can take it before postgres
// binds it; Start retries with a new port when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}
