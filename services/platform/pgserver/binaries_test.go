package pgserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindBinariesNotFound(t *testing.T) {
	t.Setenv(BinDirEnv, "/nonexistent")
	t.Setenv("PATH", "")
	_, err := FindBinaries()
	if !errors.Is(err, ErrBinariesNotFound) {
		t.Fatalf("err = %v, want ErrBinariesNotFound", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "apt-get install postgresql") {
		t.Fatalf("error is not the one-line advice: %q", msg)
	}
}

func TestFindBinariesResolvesSymlinksOnPath(t *testing.T) {
	real, err := FindBinaries()
	if err != nil {
		t.Fatalf("this test needs the server binaries: %v", err)
	}
	// A PATH entry of symlinks, like /usr/local/bin on this machine, must lead to the real
	// directory, where the binaries' share and lib directories are found relative to them.
	links := t.TempDir()
	for _, name := range requiredBinaries {
		if err := os.Symlink(filepath.Join(real, name), filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(BinDirEnv, "")
	t.Setenv("PATH", links)
	got, err := FindBinaries()
	if err != nil {
		t.Fatalf("FindBinaries: %v", err)
	}
	want, _ := filepath.EvalSymlinks(real)
	if got != want {
		t.Fatalf("FindBinaries = %s, want %s", got, want)
	}
}

func TestFindBinariesHonoursEnv(t *testing.T) {
	real, err := FindBinaries()
	if err != nil {
		t.Fatalf("this test needs the server binaries: %v", err)
	}
	t.Setenv(BinDirEnv, real)
	t.Setenv("PATH", "")
	if got, err := FindBinaries(); err != nil || got != real {
		t.Fatalf("FindBinaries = %s, %v; want %s", got, err, real)
	}
}

func TestParseVersionOrdersNumerically(t *testing.T) {
	a, _ := parseVersion("9.6")
	b, _ := parseVersion("10")
	if !lessVersion(a, b) || lessVersion(b, a) {
		t.Fatal("9.6 must sort below 10")
	}
	if _, ok := parseVersion("15beta"); ok {
		t.Fatal("15beta parsed as a version")
	}
}

func TestFindBinariesFallsBackToHighestDistroVersion(t *testing.T) {
	root := t.TempDir()
	for _, version := range []string{"9.6", "10", "16beta"} {
		bin := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range requiredBinaries {
			if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A higher version without the server binaries (client only) does not count.
	if err := os.MkdirAll(filepath.Join(root, "17", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	distroRoot = root
	t.Cleanup(func() { distroRoot = "/usr/lib/postgresql" })
	t.Setenv(BinDirEnv, "")
	t.Setenv("PATH", "")
	got, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "10", "bin"); got != want {
		t.Fatalf("FindBinaries = %s, want %s", got, want)
	}
}
