package pgserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// osUser is the account initdb and postgres run as. Both refuse to run as root, and this
// machine and CI run everything as root, so root hands the cluster to an unprivileged account.
type osUser struct {
	name     string
	uid, gid uint32
	// switchTo is true when we are root and the child must drop to uid/gid.
	switchTo bool
}

// unprivilegedCandidates are tried in order when running as root: the distribution's own
// postgres account when the server package created one, else nobody.
var unprivilegedCandidates = []string{"postgres", "nobody"}

// clusterUser returns the account the cluster runs as: ourselves, or an unprivileged one when
// we are root.
func clusterUser() (osUser, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return osUser{name: name, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
	}
	for _, name := range unprivilegedCandidates {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, errUID := strconv.ParseUint(u.Uid, 10, 32)
		gid, errGID := strconv.ParseUint(u.Gid, 10, 32)
		if errUID != nil || errGID != nil {
			continue
		}
		return osUser{name: name, uid: uint32(uid), gid: uint32(gid), switchTo: true}, nil
	}
	return osUser{}, fmt.Errorf("running as root and neither of the users %v exists to run PostgreSQL as", unprivilegedCandidates)
}

// sysProcAttr returns the process attributes shared by initdb and postgres.
func (u osUser) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		// Its own process group keeps a terminal's Ctrl-C away from postgres, so the owner
		// decides when and how the cluster stops.
		Setpgid: true,
	}
	if u.switchTo {
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
	}
	return attr
}

// prepareDataDir creates the data dir and, when the cluster runs as another account, checks that
// account can reach it.
func prepareDataDir(dir string, u osUser) error {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(parent); errors.Is(err, fs.ErrNotExist) {
		// Parents are created traversable: created 0700 by root they would lock out postgres.
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("create parent of data dir %s: %w", dir, err)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat data dir %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if !u.switchTo {
		return nil
	}
	return checkTraversable(dir, u)
}

// checkTraversable fails, naming the directory, when an ancestor of dir cannot be searched by u.
// Root can reach everything, so without this check the failure would surface only as an
// obscure initdb or postgres error.
func checkTraversable(dir string, u osUser) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no owner information", p)
		}
		var need fs.FileMode
		switch {
		case st.Uid == u.uid:
			need = 0o100
		case st.Gid == u.gid:
			need = 0o010
		default:
			need = 0o001
		}
		if info.Mode().Perm()&need == 0 {
			return fmt.Errorf("PostgreSQL runs as user %s, which cannot reach data dir %s: directory %s (mode %v) is not traversable; "+
				"run `chmod o+x %s` or choose another data dir", u.name, dir, p, info.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chownTree gives dir and everything beneath it to u; files left by a previous run as another
// account (or by root) would otherwise make postgres fail on permissions.
func chownTree(dir string, u osUser) error {
	if !u.switchTo {
		return nil
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid == u.uid && st.Gid == u.gid {
			return nil
		}
		return os.Lchown(path, int(u.uid), int(u.gid))
	})
	if err != nil {
		return fmt.Errorf("give data dir %s to user %s: %w", dir, u.name, err)
	}
	return nil
}
