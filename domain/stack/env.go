package stack

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gantryhq/gantry/domain"
)

// Scope limits the phases an environment variable is passed to.
type Scope string

// Scopes, chosen by the ro_ and wo_ key prefixes.
const (
	ScopeAll       Scope = "ALL"        // no prefix: every phase
	ScopeReadOnly  Scope = "READ_ONLY"  // ro_: read-only phases (planning, proposed runs)
	ScopeWriteOnly Scope = "WRITE_ONLY" // wo_: write phases (applying, tasks)
)

// Limits on environment variables.
const (
	MaxEnvKeyLength     = 255
	MaxEnvValueLength   = 64 << 10
	MaxCiphertextLength = 128 << 10
)

// EnvVar is one environment variable of a stack. A secret's value is only
// ever the ciphertext produced outside the domain; Value is then empty.
type EnvVar struct {
	Key        string // as the user wrote it, prefix included: the variable's identity
	Name       string // the name the run sees, without the prefix
	Scope      Scope
	Secret     bool
	Value      string // plain variables only
	Ciphertext []byte // secret variables only
}

func (v EnvVar) clone() EnvVar {
	v.Ciphertext = bytes.Clone(v.Ciphertext)
	return v
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseEnvKey splits a key into the variable name and its scope, and checks
// that the name is a valid environment variable name. GANTRY_ names are
// reserved for what Gantry itself passes to runs.
func ParseEnvKey(key string) (name string, scope Scope, err error) {
	invalid := func(problem string) error { return &domain.ValidationError{Field: "key", Problem: problem} }
	name, scope = key, ScopeAll
	if rest, ok := strings.CutPrefix(key, "ro_"); ok {
		name, scope = rest, ScopeReadOnly
	} else if rest, ok := strings.CutPrefix(key, "wo_"); ok {
		name, scope = rest, ScopeWriteOnly
	}
	switch {
	case key == "":
		return "", "", invalid("must not be empty")
	case len(key) > MaxEnvKeyLength:
		return "", "", invalid("is too long")
	case name == "":
		return "", "", invalid(key + " has a scope prefix but no name")
	case !envName.MatchString(name):
		return "", "", invalid(key + ": use letters, digits and '_', not starting with a digit")
	case strings.HasPrefix(strings.ToUpper(name), "GANTRY_"):
		return "", "", invalid(key + ": GANTRY_ variables are reserved")
	}
	return name, scope, nil
}

// checkEnvValue enforces that plain values are plain and secrets arrive
// encrypted: the domain must never hold a plaintext secret.
func checkEnvValue(p *domain.Problems, secret bool, value string, ciphertext []byte) {
	if secret {
		if value != "" {
			p.Add("value", "a secret arrives encrypted, in ciphertext, never as a plain value")
		}
		switch {
		case len(ciphertext) == 0:
			p.Add("ciphertext", "a secret needs its ciphertext")
		case len(ciphertext) > MaxCiphertextLength:
			p.Addf("ciphertext", "must be at most %d bytes", MaxCiphertextLength)
		}
		return
	}
	if ciphertext != nil {
		p.Add("ciphertext", "only secrets have a ciphertext")
	}
	switch {
	case len(value) > MaxEnvValueLength:
		p.Addf("value", "must be at most %d bytes", MaxEnvValueLength)
	case !utf8.ValidString(value) || strings.ContainsRune(value, 0):
		// JSON would silently replace invalid UTF-8; a process cannot receive NUL.
		p.Add("value", "must be valid UTF-8 without NUL bytes")
	}
}

// EnvFor returns the variables a run phase receives: write phases get ALL and
// WRITE_ONLY variables, read-only phases ALL and READ_ONLY ones. A scoped
// variable overrides an unscoped one of the same name. Sorted by name.
func (s State) EnvFor(write bool) []EnvVar {
	want := ScopeReadOnly
	if write {
		want = ScopeWriteOnly
	}
	byName := map[string]EnvVar{}
	for _, v := range s.env {
		if prev, ok := byName[v.Name]; v.Scope == want || v.Scope == ScopeAll && (!ok || prev.Scope == ScopeAll) {
			byName[v.Name] = v.clone()
		}
	}
	out := make([]EnvVar, 0, len(byName))
	for _, v := range byName {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}
