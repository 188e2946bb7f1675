package bus

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantryhq/gantry/services/platform/privatefile"
)

// minServicePasswordLength is the shortest service password Config accepts.
const minServicePasswordLength = 16

// credential is a user name and password; the zero value is none.
type credential struct {
	user, password string
}

// servicePasswordFile holds the generated service password in the JetStream store directory.
const servicePasswordFile = "service-password"

// servicePassword returns the configured service password, or the one generated at the first
// start with storeDir and kept there: clients of a restarted server reconnect with the password
// they had, and the store already holds everything the password protects.
func servicePassword(configured, storeDir string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(storeDir, servicePasswordFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Another start may create it meanwhile; then its password is the one.
		if err := privatefile.Create(path, []byte(rand.Text()+rand.Text())); err != nil && !errors.Is(err, fs.ErrExist) { // 256 random bits
			return "", fmt.Errorf("create the NATS service password: %w", err)
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read the NATS service password: %w", err)
	}
	if len(data) < minServicePasswordLength {
		return "", fmt.Errorf("NATS service password in %s: shorter than %d characters; remove the file to make a new one", path, minServicePasswordLength)
	}
	return string(data), nil
}

// externalServers parses the comma-separated URLs of an external NATS. It
// returns the URLs without their user information (what URL reports and
// what pool tokens may carry) and the credentials they held: every URL that
// holds credentials must hold the same ones, and they must be a user and a
// password. Errors never quote a password.
func externalServers(raw string) (clean string, cred credential, err error) {
	var (
		cleaned []string
		errs    []error
		seen    bool
	)
	for _, one := range strings.Split(raw, ",") {
		one = strings.TrimSpace(one)
		u, err := parseServerURL(one)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if u.User != nil {
			password, ok := u.User.Password()
			c := credential{user: u.User.Username(), password: password}
			switch {
			case !ok || c.user == "" || c.password == "":
				errs = append(errs, fmt.Errorf("NATS URL %s: give credentials as user:password", redacted(u)))
			case seen && c != cred:
				errs = append(errs, fmt.Errorf("NATS URL %s: every URL with credentials must have the same ones", redacted(u)))
			default:
				cred, seen = c, true
			}
			u.User = nil
		}
		cleaned = append(cleaned, u.String())
	}
	if err := errors.Join(errs...); err != nil {
		return "", credential{}, err
	}
	return strings.Join(cleaned, ","), cred, nil
}

// parseServerURL parses one external server URL: nats:// or tls:// with a host.
func parseServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole input, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("NATS URL %q: %w", redactRaw(raw), err)
	}
	switch u.Scheme {
	case "nats", "tls":
	default:
		return nil, fmt.Errorf("NATS URL %s: scheme must be nats or tls", redacted(u))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("NATS URL %s: host is required", redacted(u))
	}
	return u, nil
}

// redacted is u with its user information hidden: u.Redacted shows the user, which may be a
// token.
func redacted(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("xxxxx")
	return c.String()
}

// redactRaw hides the user information of a URL that does not parse.
func redactRaw(raw string) string {
	scheme, rest, found := strings.Cut(raw, "://")
	if !found {
		scheme, rest = "", raw
	} else {
		scheme += "://"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "xxxxx" + rest[at:]
	}
	return scheme + rest
}

// serverAddress returns the host:port of one parsed server URL, with NATS's
// default port.
func serverAddress(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "4222"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
