package executor

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// writeArchive writes the tree under dir to w as a gzip-compressed tar:
// directories, regular files and symbolic links (as links, never followed),
// with their permission bits. Sockets, pipes and devices are left out; so
// are owners, which the restoring worker's user replaces.
func writeArchive(ctx context.Context, dir string, w io.Writer) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed) // provider binaries: speed over size
	if err != nil {
		return fmt.Errorf("archive the workspace: %w", err)
	}
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return addToArchive(tw, p, filepath.ToSlash(rel), d)
	})
	if err != nil {
		return fmt.Errorf("archive the workspace: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive the workspace: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("archive the workspace: %w", err)
	}
	return nil
}

// addToArchive writes one entry.
func addToArchive(tw *tar.Writer, p, name string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: info.ModTime(), Format: tar.FormatPAX}
	switch {
	case info.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case info.Mode()&fs.ModeSymlink != 0:
		if hdr.Linkname, err = os.Readlink(p); err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeSymlink
	case info.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
	default:
		return nil // sockets, pipes, devices: nothing a run needs to keep
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("%s changed while it was archived: %w", name, err)
	}
	return nil
}

// extractArchive unpacks a gzip-compressed tar written by writeArchive into
// dest, an existing directory. Every entry must be a relative path that stays
// inside dest, and nothing is written through a symbolic link that leads
// out of it (os.Root); links themselves are restored as they were. Only
// directories, regular files and symbolic links are accepted. It reads r to
// its end.
func extractArchive(ctx context.Context, r io.Reader, dest string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("unpack the workspace: %w", err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack the workspace: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	type dirMode struct {
		name string
		perm fs.FileMode
	}
	var dirs []dirMode
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack the workspace: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return fmt.Errorf("unpack the workspace: %w", err)
		}
		perm := fs.FileMode(hdr.Mode).Perm()
		if dir := path.Dir(name); dir != "." && hdr.Typeflag != tar.TypeDir {
			if err := root.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("unpack the workspace: %w", err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o700)
			dirs = append(dirs, dirMode{name, perm})
		case tar.TypeReg:
			err = extractFile(root, name, perm, tr)
		case tar.TypeSymlink:
			if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
				return fmt.Errorf("unpack the workspace: symlink %s has an invalid target", name)
			}
			err = root.Symlink(hdr.Linkname, name)
		default:
			return fmt.Errorf("unpack the workspace: %s has unsupported type %q", name, hdr.Typeflag)
		}
		if err != nil {
			return fmt.Errorf("unpack the workspace: %w", err)
		}
	}
	// Read to the end, so that whatever follows the archive is checked too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return fmt.Errorf("unpack the workspace: %w", err)
	}
	// Directory modes last, deepest first: a read-only directory would have
	// refused its own entries.
	slices.SortFunc(dirs, func(a, b dirMode) int { return strings.Count(b.name, "/") - strings.Count(a.name, "/") })
	for _, d := range dirs {
		if err := root.Chmod(d.name, d.perm); err != nil {
			return fmt.Errorf("unpack the workspace: %w", err)
		}
	}
	return nil
}

// entryName checks an archive entry's name: relative, clean, inside the
// archive's root.
func entryName(raw string) (string, error) {
	name := strings.TrimSuffix(raw, "/")
	switch {
	case name == "" || strings.ContainsRune(name, 0) || strings.Contains(name, `\`):
		return "", fmt.Errorf("invalid entry name %q", raw)
	case path.IsAbs(name) || filepath.IsAbs(name):
		return "", fmt.Errorf("entry %q has an absolute path", raw)
	case path.Clean(name) != name || !filepath.IsLocal(name):
		return "", fmt.Errorf("entry %q leaves the workspace or is not a clean path", raw)
	}
	return name, nil
}

// extractFile creates name, which must not exist yet, with r's content.
func extractFile(root *os.Root, name string, perm fs.FileMode, r io.Reader) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil { // exactly, whatever the umask
		f.Close()
		return err
	}
	return f.Close()
}
