package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Names inside a workspace.
const (
	planFileName = "gantry.tfplan"
	sourceDir    = "source"
)

// workspace is the fresh directory of one run on this worker:
//
//	<dir>/home                 HOME of the run's processes
//	<dir>/tmp                  TMPDIR of the run's processes
//	<dir>/work                 what an UNCONFIRMED run saves:
//	<dir>/work/source          the checkout at the run's commit
//	<dir>/work/gantry.tfplan   the saved plan
//	<dir>/work/gantry-workspace.json   what the saved workspace belongs to
type workspace struct {
	dir, home, tmp string
	work           string
	source         string
	planFile       string
	project        string // the project root inside source, symlinks resolved
	// ready is a sandbox made in advance with this workspace, for the run
	// to use if it suits (Docker's KeepWarm).
	ready sandbox
}

// newWorkspace creates an empty workspace under parent ("" is the system's
// temporary directory), private to the worker's user.
func newWorkspace(parent, runID string) (*workspace, error) {
	dir, err := os.MkdirTemp(parent, "gantry-"+runID+"-")
	if err != nil {
		return nil, fmt.Errorf("create the workspace: %w", err)
	}
	ws := &workspace{
		dir: dir, home: filepath.Join(dir, "home"), tmp: filepath.Join(dir, "tmp"),
		work: filepath.Join(dir, "work"),
	}
	ws.source = filepath.Join(ws.work, sourceDir)
	ws.planFile = filepath.Join(ws.work, planFileName)
	for _, d := range []string{ws.home, ws.tmp, ws.work} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("create the workspace: %w", err)
		}
	}
	return ws, nil
}

// enterProjectRoot sets the project directory, refusing a root that does not
// exist or that leads outside the checkout, through ".." or a symlink.
func (ws *workspace) enterProjectRoot(root string) error {
	clean, err := cleanProjectRoot(root)
	if err != nil {
		return fmt.Errorf("project root %w", err)
	}
	base, err := filepath.EvalSymlinks(ws.source)
	if err != nil {
		return fmt.Errorf("resolve the checkout: %w", err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(ws.source, filepath.FromSlash(clean)))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("project root %q does not exist in the repository at this commit", root)
	}
	if err != nil {
		return fmt.Errorf("resolve project root %q: %w", root, err)
	}
	if rel, err := filepath.Rel(base, real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("project root %q leads outside the repository", root)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("project root %q: %w", root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("project root %q is not a directory", root)
	}
	ws.project = real
	return nil
}

// writeOverride writes the backend override file into the project root,
// replacing a file (or symlink) of that name from the repository. The write
// cannot leave the project root.
func (ws *workspace) writeOverride(data []byte) error {
	root, err := os.OpenRoot(ws.project)
	if err != nil {
		return fmt.Errorf("open the project root: %w", err)
	}
	defer root.Close()
	if err := root.Remove(OverrideFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", OverrideFile, err)
	}
	f, err := root.OpenFile(OverrideFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", OverrideFile, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", OverrideFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", OverrideFile, err)
	}
	return nil
}

// removeWorkspace deletes the run's workspace, making read-only directories
// (a Go module cache, for one) writable where that is what stops it.
func (x *execution) removeWorkspace() {
	if x.ws == nil {
		return
	}
	if err := removeAll(x.ws.dir); err != nil {
		x.log.Error("removing the workspace failed", "dir", x.ws.dir, "error", err)
	}
}

func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
