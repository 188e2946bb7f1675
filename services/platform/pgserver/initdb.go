package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// initialized reports whether dataDir already holds a cluster.
func initialized(dataDir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dataDir, "PG_VERSION"))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("check for a cluster in %s: %w", dataDir, err)
	}
}

// initCluster runs initdb. The superuser is postgres with trust authentication: the server only
// listens on loopback and on a socket inside its own data dir. Its output is returned so that it
// can go into postgres.log, which cannot exist before initdb because initdb wants an empty dir.
func initCluster(ctx context.Context, cfg Config, u osUser) ([]byte, error) {
	args := []string{"-D", cfg.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"}
	if !cfg.Durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, cfg.binary("initdb"), args...)
	cmd.Dir = cfg.DataDir
	cmd.Env = childEnv()
	cmd.SysProcAttr = u.sysProcAttr()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("initdb in %s as user %s: %w: %s", cfg.DataDir, u.name, err, strings.TrimSpace(tail(out.Bytes(), tailLines)))
	}
	return out.Bytes(), nil
}

// childEnv is our environment without the libpq variables that would make initdb or postgres
// pick up settings meant for some other server.
func childEnv() []string {
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
