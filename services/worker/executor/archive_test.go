package executor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArchiveKeepsModesAndSymlinks(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	files := map[string]fs.FileMode{"run.sh": 0o755, "secret.txt": 0o600, "sub/dir/data": 0o644, "ro": 0o444}
	for name, mode := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	dirs := map[string]fs.FileMode{"sub": 0o750, "sub/dir": 0o555, "empty": 0o700}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"rel": "sub/dir/data", "abs": "/usr/share/plugin-cache/provider", "sub/up": "../run.sh"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range dirs {
		if err := os.Chmod(filepath.Join(src, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = removeAll(src) })

	var buf bytes.Buffer
	if err := writeArchive(ctx, src, &buf); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	t.Cleanup(func() { _ = removeAll(dest) })
	if err := extractArchive(ctx, &buf, dest); err != nil {
		t.Fatal(err)
	}
	for name, mode := range files {
		p := filepath.Join(dest, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if fi.Mode() != mode || err != nil || string(data) != "content of "+name {
			t.Errorf("%s: mode %s, content %q, %v", name, fi.Mode(), data, err)
		}
	}
	for name, mode := range dirs {
		if fi, err := os.Lstat(filepath.Join(dest, name)); err != nil || fi.Mode() != fs.ModeDir|mode {
			t.Errorf("%s: %v, %v; want a directory with %s", name, fi.Mode(), err, mode)
		}
	}
	for name, target := range links {
		if got, err := os.Readlink(filepath.Join(dest, name)); err != nil || got != target {
			t.Errorf("%s: link to %q, %v; want %q", name, got, err, target)
		}
	}
}

// tarball builds a gzip-compressed tar of the given headers; regular files
// get their Name as content.
func tarball(t *testing.T, headers ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range headers {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(h.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractRefusesEntriesThatLeaveTheWorkspace(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
	link := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
	}
	for name, tc := range map[string]struct {
		headers []*tar.Header
		want    string
	}{
		"parent":             {[]*tar.Header{reg("../evil")}, "leaves the workspace"},
		"parent in a path":   {[]*tar.Header{reg("a/../../evil")}, "leaves the workspace"},
		"absolute":           {[]*tar.Header{reg("/tmp/evil")}, "absolute path"},
		"through a link up":  {[]*tar.Header{link("up", ".."), reg("up/evil")}, "escapes"},
		"through a link out": {[]*tar.Header{link("out", "/tmp"), reg("out/evil")}, "escapes"},
		"a dir through link": {[]*tar.Header{link("out", "/tmp"), {Name: "out/evildir/", Typeflag: tar.TypeDir}}, "escapes"},
		"hard link":          {[]*tar.Header{reg("a"), {Name: "b", Typeflag: tar.TypeLink, Linkname: "a"}}, "unsupported type"},
		"device":             {[]*tar.Header{{Name: "dev", Typeflag: tar.TypeChar}}, "unsupported type"},
		"a file twice":       {[]*tar.Header{reg("a"), reg("a")}, "exists"},
		"backslash":          {[]*tar.Header{reg(`..\evil`)}, "invalid entry name"},
		"empty link":         {[]*tar.Header{link("l", "")}, "invalid target"},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			if err := os.Mkdir(dest, 0o700); err != nil {
				t.Fatal(err)
			}
			err := extractArchive(context.Background(), bytes.NewReader(tarball(t, tc.headers...)), dest)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("extract = %v, want an error with %q", err, tc.want)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("something was written next to the destination: %v", entries)
			}
			if _, err := os.Lstat("/tmp/evil"); err == nil {
				t.Error("/tmp/evil was written")
			}
			if _, err := os.Lstat("/tmp/evildir"); err == nil {
				t.Error("/tmp/evildir was written")
			}
		})
	}
}

func TestRestoreWantsAnEmptyDirectory(t *testing.T) {
	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := RestoreWorkspace(context.Background(), bytes.NewReader(nil), nil, dest)
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("restore into a non-empty directory: %v", err)
	}
}
