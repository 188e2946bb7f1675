// Package pgserver runs a private PostgreSQL cluster from the server binaries installed on the
// machine: the embedded database of `gantry dev` and the throwaway cluster of the test harness.
package pgserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gantryhq/gantry/services/platform/settings"
)

// ErrBinariesNotFound is returned when no directory holds the PostgreSQL server binaries. Its
// message is the whole advice a user needs, so callers print it as it is.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries (initdb, postgres) not found: " +
	"install them with `apt-get install postgresql` or set GANTRY_PG_BINDIR")

// BinDirEnv names the environment variable that overrides where the server binaries are looked for.
var BinDirEnv = settings.PGBinDir.Name

// distroRoot is where Debian and Ubuntu install one directory per major version; their packages
// do not put initdb on PATH, so it is searched last. Tests point it at a fake tree.
var distroRoot = "/usr/lib/postgresql"

// requiredBinaries are the programs Start runs; pg_ctl is not run but its presence tells a
// server installation apart from a client-only one.
var requiredBinaries = []string{"initdb", "postgres", "pg_ctl"}

// FindBinaries returns the directory holding initdb, postgres and pg_ctl: $GANTRY_PG_BINDIR when
// set, else the directory initdb on PATH resolves to (following symlinks), else the highest
// version under /usr/lib/postgresql. It returns ErrBinariesNotFound when none has them.
func FindBinaries() (string, error) {
	if dir, ok := settings.PGBinDir.Lookup(os.Getenv); ok {
		if hasBinaries(dir) {
			return dir, nil
		}
		// An explicit choice is not second-guessed by searching elsewhere.
		return "", fmt.Errorf("%s=%s: %w", BinDirEnv, dir, ErrBinariesNotFound)
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			if dir := filepath.Dir(resolved); hasBinaries(dir) {
				return dir, nil
			}
		}
	}
	if dir := highestDistroVersion(); dir != "" {
		return dir, nil
	}
	return "", ErrBinariesNotFound
}

// hasBinaries reports whether dir holds every required program as an executable file.
func hasBinaries(dir string) bool {
	for _, name := range requiredBinaries {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// highestDistroVersion returns /usr/lib/postgresql/<highest major>/bin, or "" if there is none.
// Versions compare numerically so that 9.6 sorts below 10.
func highestDistroVersion() string {
	entries, err := os.ReadDir(distroRoot)
	if err != nil {
		return ""
	}
	type candidate struct {
		dir     string
		version []int
	}
	var found []candidate
	for _, e := range entries {
		version, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		dir := filepath.Join(distroRoot, e.Name(), "bin")
		if hasBinaries(dir) {
			found = append(found, candidate{dir: dir, version: version})
		}
	}
	if len(found) == 0 {
		return ""
	}
	sort.Slice(found, func(i, j int) bool { return lessVersion(found[j].version, found[i].version) })
	return found[0].dir
}

// parseVersion parses a dotted version such as "15" or "9.6".
func parseVersion(s string) ([]int, bool) {
	parts := strings.Split(s, ".")
	version := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		version = append(version, n)
	}
	return version, true
}

func lessVersion(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// binary returns the path of a program in the configured binary directory.
func (c Config) binary(name string) string {
	return filepath.Join(c.BinDir, name)
}
