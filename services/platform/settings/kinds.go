package settings

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Each check's error completes `NAME: "value" …`: it starts with a verb.

// Text is any text.
func Text(format string) Kind { return Kind{Format: format} }

// AbsDirOr is an absolute directory, or the word (which turns a feature
// off, say).
func AbsDirOr(word string) Kind {
	return Kind{Format: "absolute directory, or `" + word + "`", check: func(s string) error {
		if s == word || filepath.IsAbs(s) {
			return nil
		}
		return fmt.Errorf("is not an absolute path (or %s)", word)
	}}
}

// Duration is a positive Go duration.
func Duration() Kind {
	return Kind{Format: "Go duration (`90s`, `7m`, `1h30m`), positive", check: func(s string) error {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return errors.New("is not a duration such as 7m or 1h30m")
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		return nil
	}}
}

// Bool is a boolean as strconv.ParseBool reads it.
func Bool() Kind {
	return Kind{Format: "boolean: `true` or `false` (`1`, `0`)", check: func(s string) error {
		_, err := parseBool(s)
		return err
	}}
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, errors.New("is not a boolean (true or false)")
	}
	return b, nil
}

// Int is an integer of at least min.
func Int(min int) Kind {
	return Kind{Format: fmt.Sprintf("integer, at least %d", min), check: func(s string) error {
		n, err := parseInt(s)
		if err != nil {
			return err
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}}
}

// IntRange is an integer from min to max.
func IntRange(min, max int) Kind {
	return Kind{Format: fmt.Sprintf("integer from %d to %d", min, max), check: func(s string) error {
		n, err := parseInt(s)
		if err != nil {
			return err
		}
		if n < min || n > max {
			return fmt.Errorf("must be from %d to %d", min, max)
		}
		return nil
	}}
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("is not an integer")
	}
	return n, nil
}

// Enum is one of values, compared without regard to case.
func Enum(values ...string) Kind {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "`" + v + "`"
	}
	return Kind{Format: "one of " + strings.Join(quoted, ", "), check: func(s string) error {
		for _, v := range values {
			if strings.EqualFold(strings.TrimSpace(s), v) {
				return nil
			}
		}
		return fmt.Errorf("is not one of %s", strings.Join(values, ", "))
	}, values: values}
}

// URL is a URL of one of schemes.
func URL(schemes ...string) Kind {
	return Kind{Format: "URL, scheme " + orList(schemes, "`"), check: func(s string) error {
		return checkURL(s, schemes)
	}, values: schemes}
}

// URLList is a comma-separated list of URLs of schemes (a NATS cluster).
func URLList(schemes ...string) Kind {
	return Kind{Format: "URL, scheme " + orList(schemes, "`") + "; several separated by commas", check: func(s string) error {
		for _, u := range strings.Split(s, ",") {
			if err := checkURL(strings.TrimSpace(u), schemes); err != nil {
				return err
			}
		}
		return nil
	}, values: schemes}
}

// PostgresURL is a libpq connection URL (postgres://…) or keyword/value
// string (host=… dbname=…).
func PostgresURL() Kind {
	return Kind{Format: "`postgres://` URL (or libpq `key=value` pairs)", check: func(s string) error {
		if !strings.Contains(s, "://") && strings.Contains(s, "=") {
			return nil
		}
		return checkURL(s, []string{"postgres", "postgresql"})
	}}
}

// checkURL says what keeps s from being a URL of one of schemes. Errors
// never quote the URL itself, which may hold a password.
func checkURL(s string, schemes []string) error {
	u, err := url.Parse(s)
	if err != nil || !strings.Contains(s, "://") {
		forms := make([]string, len(schemes))
		for i, sc := range schemes {
			forms[i] = sc + "://…"
		}
		return fmt.Errorf("is not a URL: want %s", orList(forms, ""))
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		return fmt.Errorf("has scheme %q: want %s", u.Scheme, orList(schemes, ""))
	}
	return nil
}

// HostPort is a listen address host:port.
func HostPort() Kind {
	return Kind{Format: "`host:port` (`:port` for every interface)", check: func(s string) error {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return errors.New("is not host:port")
		}
		return nil
	}}
}

// NameList is a comma-separated list of environment variable names.
func NameList() Kind {
	return Kind{Format: "comma-separated variable names", check: func(s string) error {
		for _, n := range strings.Split(s, ",") {
			if n = strings.TrimSpace(n); n != "" && !ValidName(n) {
				return fmt.Errorf("lists %q, which is not a variable name", n)
			}
		}
		return nil
	}}
}

// ValidName reports whether s is an environment variable name: letters,
// digits and underscores, not starting with a digit.
func ValidName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// Checked is a kind whose reader parses and checks it (a key, a list of
// mounts): format says what it accepts and who checks it.
func Checked(format string) Kind { return Kind{Format: format} }

// orList is "a, b or c", each item between quote.
func orList(items []string, quote string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote + s + quote
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
