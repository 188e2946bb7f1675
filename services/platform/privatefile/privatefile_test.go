package privatefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceCreateRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "key")
	if err := Replace(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(path); err != nil || string(got) != "two" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o", info.Mode().Perm())
	}
	if info, _ := os.Stat(filepath.Dir(path)); info.Mode().Perm() != 0o700 {
		t.Errorf("parent mode %04o", info.Mode().Perm())
	}
	// Create leaves an existing file alone.
	if err := Create(path, []byte("three")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a file: %v, want fs.ErrExist", err)
	}
	if got, _ := Read(path); string(got) != "two" {
		t.Fatalf("Create replaced the file: %q", got)
	}
	fresh := filepath.Join(dir, "fresh")
	if err := Create(fresh, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(fresh); err != nil || string(got) != "new" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v", err)
	}
	if err := os.Chmod(fresh, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(fresh); err == nil || !strings.Contains(err.Error(), "lets other users read it") {
		t.Errorf("Read of a 0644 file: %v", err)
	}
}
