package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/stack"
)

// MountedFile is one of the stack's mounted files, opened: PREPARING writes
// it at Path, relative to the project root, before init. Its content is the
// stack owner's secret: String, GoString and LogValue leave it out, and the
// file is readable by the worker's user only. Lines of it that a command
// prints are not masked: a file is not a value the masker can recognise.
type MountedFile struct {
	Path    string // relative to the project root, clean (stack.CleanFilePath)
	Content []byte
}

// String names the file without its content.
func (f MountedFile) String() string { return fmt.Sprintf("%s (%d bytes)", f.Path, len(f.Content)) }

// GoString is String, so that %#v does not print the content either.
func (f MountedFile) GoString() string { return f.String() }

// checkFiles refuses paths that would leave the project root, that are not
// clean, that two files share, or that would replace the backend override.
func checkFiles(p *domain.Problems, files []MountedFile) {
	seen := map[string]bool{}
	for _, f := range files {
		clean, err := stack.CleanFilePath(f.Path)
		switch {
		case err != nil:
			p.Addf("files", "%q: %v", f.Path, err)
		case clean != f.Path:
			p.Addf("files", "%q is not clean (%q)", f.Path, clean)
		case f.Path == OverrideFile:
			p.Addf("files", "%s is the backend override's name: a mounted file cannot replace it", f.Path)
		case seen[f.Path]:
			p.Addf("files", "%s is given twice", f.Path)
		}
		seen[f.Path] = true
	}
}

// mountFiles writes the job's mounted files into the project root,
// replacing files (or symlinks) of the same name from the repository. The
// writes cannot leave the project root, through ".." or a symlink.
func (x *execution) mountFiles(ph *phase) *failure {
	if len(x.job.Files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(x.ws.project)
	if err != nil {
		return x.fail(ph, ExitNoProcess, "mount files: open the project root: %v", err)
	}
	defer root.Close()
	for _, f := range x.job.Files {
		if err := writeInRoot(root, f); err != nil {
			return x.fail(ph, ExitNoProcess, "mount %s: %v", f.Path, err)
		}
		ph.log.printf("Mounted %s", f)
	}
	return nil
}

func writeInRoot(root *os.Root, f MountedFile) error {
	if dir := path.Dir(f.Path); dir != "." {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if err := root.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := out.Write(f.Content); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
