// Package settings is the one table of the environment variables Gantry
// reads (table.go): each is declared there once, with the commands that read
// it, its default, an example, a one-line description and how its value is
// parsed. Code reads variables through their Var, the docs
// (docs/configuration.md) and each command's --help are generated from the
// table, and every command checks the values of the variables it reads
// before it starts (Check).
package settings

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Getenv reads one variable of the environment ("" when unset), as
// os.Getenv does; commands are handed one so that tests can give theirs.
type Getenv func(string) string

// Command groups of Var.Commands besides the commands' own names
// ("server", "projector rebuild", …).
const (
	// CLI is every command that calls the API (stack, run, pool, login, …).
	CLI = "CLI"
	// Tests are the test suite's helpers, which read their variables
	// themselves; no command reads them.
	Tests = "tests"
	// Benchmarks are the benchmarks of the test suite.
	Benchmarks = "benchmarks"
)

// Var is one environment variable.
type Var struct {
	// Name is the variable's name; with Prefix, the prefix of a family of
	// variables (GANTRY_METADATA_<key>).
	Name string
	// Prefix: Name is a prefix, and every variable starting with it is read.
	Prefix bool
	// Commands are the commands that read it: command paths below gantry
	// ("server", "projector rebuild") or CLI, Tests, Benchmarks.
	Commands []string
	// Default is the value used when the variable is unset or empty, given
	// as it would be set (parsed like a set value); "" for none.
	Default string
	// DefaultDoc describes the default where it depends on the command or
	// on other settings; it replaces Default in the docs.
	DefaultDoc string
	// Example is a value as an operator would set it (it must parse).
	Example string
	// Doc is what it means, on one line.
	Doc string
	// Kind says how a value is parsed and checked.
	Kind Kind
	// Secret: values are never quoted in errors.
	Secret bool
	// Internal: set by Gantry itself (never by an operator); not in --help.
	Internal bool
}

// Kind is how the values of a Var are parsed and checked.
type Kind struct {
	// Format describes the accepted values, for the docs and --help.
	Format string
	// check returns what is wrong with a set value, without naming the
	// variable; nil accepts every value.
	check func(value string) error
	// values are the accepted values of an Enum, the schemes of a URL.
	values []string
}

// Values are the values an Enum accepts, or the schemes a URL may have;
// nil for other kinds.
func (k Kind) Values() []string { return slices.Clone(k.values) }

// table is every Var, in the order of table.go.
var table []*Var

// define adds v to the table and returns it.
func define(v Var) *Var {
	p := &v
	table = append(table, p)
	return p
}

// All returns every variable of the table, in its order.
func All() []*Var { return slices.Clone(table) }

// For returns the variables read by a command named by any of names (its
// path below gantry, and CLI for a command that calls the API), without
// the internal ones.
func For(names ...string) []*Var {
	var out []*Var
	for _, v := range table {
		if v.Internal {
			continue
		}
		for _, n := range names {
			if slices.Contains(v.Commands, n) {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// Check checks the value of each of vars in getenv's environment and
// returns every problem at once, each naming its variable.
func Check(getenv Getenv, vars ...*Var) error {
	var errs []error
	for _, v := range vars {
		if v.Prefix {
			continue // their names are open-ended: their reader checks them
		}
		if err := v.Check(getenv); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lookup returns the variable's value and whether it is set (not empty).
func (v *Var) Lookup(getenv Getenv) (string, bool) {
	s := getenv(v.Name)
	return s, s != ""
}

// Value returns the variable's value, or its Default when unset. It does
// not check the value: Check (run at start) did.
func (v *Var) Value(getenv Getenv) string {
	if s, ok := v.Lookup(getenv); ok {
		return s
	}
	return v.Default
}

// Check returns what is wrong with the variable's value, naming it; nil
// when it is unset or good.
func (v *Var) Check(getenv Getenv) error {
	s, ok := v.Lookup(getenv)
	if !ok || v.Kind.check == nil {
		return nil
	}
	if err := v.Kind.check(s); err != nil {
		return v.errorf(s, err)
	}
	return nil
}

// errorf is the error of value s: "NAME: "s" problem", or without the value
// for a secret.
func (v *Var) errorf(s string, err error) error {
	if v.Secret {
		return fmt.Errorf("%s: the value %w", v.Name, err)
	}
	return fmt.Errorf("%s: %q %w", v.Name, s, err)
}

// checked returns the value (or the default) after checking it.
func (v *Var) checked(getenv Getenv) (string, error) {
	if err := v.Check(getenv); err != nil {
		return "", err
	}
	return strings.TrimSpace(v.Value(getenv)), nil
}

// Duration returns the value of a Duration variable (its default when
// unset; 0 without one).
func (v *Var) Duration(getenv Getenv) (time.Duration, error) {
	s, err := v.checked(getenv)
	if err != nil || s == "" {
		return 0, err
	}
	return time.ParseDuration(s)
}

// Bool returns the value of a Bool variable (false when unset, without a
// default).
func (v *Var) Bool(getenv Getenv) (bool, error) {
	s, err := v.checked(getenv)
	if err != nil || s == "" {
		return false, err
	}
	return parseBool(s)
}

// Int returns the value of an Int variable (0 when unset, without a
// default).
func (v *Var) Int(getenv Getenv) (int, error) {
	s, err := v.checked(getenv)
	if err != nil || s == "" {
		return 0, err
	}
	return parseInt(s)
}

// String returns the checked value (or the default).
func (v *Var) String(getenv Getenv) (string, error) { return v.checked(getenv) }
