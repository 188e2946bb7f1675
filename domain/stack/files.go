package stack

import (
	"bytes"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gantryhq/gantry/domain"
)

// Limits on mounted files: small configuration files (a kubeconfig, a
// credentials file), not data. Every run's job carries all of them.
const (
	MaxFilePathLength       = 1024
	MaxFileSize             = 128 << 10
	MaxFileCiphertextLength = 256 << 10
)

// MountedFile is a file written into the workspace of every run of the
// stack. Its content is only ever the ciphertext produced outside the
// domain, like a secret variable's value.
type MountedFile struct {
	Path       string // relative to the project root, clean
	Size       int64  // of the content, in bytes
	Ciphertext []byte
}

func (f MountedFile) clone() MountedFile {
	f.Ciphertext = bytes.Clone(f.Ciphertext)
	return f
}

// Files lists the mounted files sorted by path.
func (s State) Files() []MountedFile {
	out := make([]MountedFile, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, f.clone())
	}
	slices.SortFunc(out, func(a, b MountedFile) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// CleanFilePath validates the path of a mounted file and returns it clean
// ("./a//b" is "a/b"). It must name a file inside the project root: not
// absolute, no ".." element, not a directory. The error is a
// *domain.ValidationError naming the field "path".
func CleanFilePath(p string) (string, error) {
	invalid := func(problem string) (string, error) {
		return "", &domain.ValidationError{Field: "path", Problem: problem}
	}
	switch {
	case strings.TrimSpace(p) == "":
		return invalid("must not be empty")
	case len(p) > MaxFilePathLength:
		return invalid("is too long")
	case !utf8.ValidString(p) || strings.ContainsFunc(p, unicode.IsControl):
		return invalid("must be valid UTF-8 without control characters")
	case strings.HasPrefix(p, "/"):
		return invalid(p + " is absolute: give a path relative to the project root")
	case strings.HasSuffix(p, "/"):
		return invalid(p + " names a directory: give the path of a file")
	case slices.Contains(strings.Split(p, "/"), ".."):
		return invalid(p + " contains \"..\": a mounted file stays inside the project root")
	}
	clean := path.Clean(p)
	if clean == "." {
		return invalid(p + " names the project root: give the path of a file")
	}
	return clean, nil
}

func (s State) mountFile(c MountFile) ([]Event, error) {
	var p domain.Problems
	clean, err := CleanFilePath(c.Path)
	p.Check(err)
	if err == nil && clean != c.Path {
		p.Addf("path", "%q is not clean: use %q", c.Path, clean)
	}
	if c.Size < 0 || c.Size > MaxFileSize {
		p.Addf("size", "must be between 0 and %d bytes", MaxFileSize)
	}
	switch {
	case len(c.Ciphertext) == 0:
		p.Add("ciphertext", "a mounted file arrives encrypted: it needs its ciphertext")
	case len(c.Ciphertext) > MaxFileCiphertextLength:
		p.Addf("ciphertext", "must be at most %d bytes", MaxFileCiphertextLength)
	}
	if _, ok := s.env[c.Path]; ok {
		p.Addf("path", "%s is the key of an environment variable of this stack: delete the variable first", c.Path)
	}
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if old, ok := s.files[c.Path]; ok && old.Size == c.Size && bytes.Equal(old.Ciphertext, c.Ciphertext) {
		return nil, nil
	}
	return []Event{StackFileMounted{Path: c.Path, Size: c.Size, Ciphertext: bytes.Clone(c.Ciphertext), At: c.At, Actor: c.Actor}}, nil
}
