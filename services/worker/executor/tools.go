package executor

import (
	"fmt"
	"os"
	"path/filepath"
)

// tools are the absolute paths of the programs a run needs.
type tools struct {
	git, sh, tool string
}

// findTools looks up git (when the run clones), sh and the stack's tool in
// Config.Path, the PATH of the run, not the launcher's.
func (x *execution) findTools(needGit bool) (tools, error) {
	var t tools
	var err error
	if needGit {
		if t.git, err = lookPath("git", x.cfg.Path); err != nil {
			return tools{}, err
		}
	}
	if t.sh, err = lookPath("sh", x.cfg.Path); err != nil {
		return tools{}, err
	}
	if t.tool, err = lookPath(string(x.job.Tool), x.cfg.Path); err != nil {
		return tools{}, fmt.Errorf("the stack's tool: %w", err)
	}
	return t, nil
}

// lookPath finds the executable name in the directories of path. Unlike
// exec.LookPath it uses the given PATH and never the current directory.
func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed on this worker: no executable %q in PATH %s", name, name, path)
}
