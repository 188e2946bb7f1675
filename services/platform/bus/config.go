// Package bus provides the NATS connection every Gantry service shares: an embedded NATS server
// with JetStream for `gantry dev` and tests, or an external cluster. The embedded server admits
// only Gantry's services (ServiceUser, full permissions) and pool launchers (their pool id and
// secret, confined to their pool's subjects: see subjects.go and poolPermissions). docs/nats.md
// describes both modes.
package bus

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
)

// DefaultListen is where the embedded server listens unless told otherwise.
const DefaultListen = "127.0.0.1:1984"

// Config chooses between an external NATS and the embedded server.
type Config struct {
	// URL of an external NATS (comma-separated for several servers). When set, no server is
	// embedded and Listen and StoreDir are ignored.
	URL string
	// Listen is the embedded server's host:port; port "-1" or "0" picks a free one.
	Listen string
	// StoreDir holds JetStream's file storage; "" means a temporary directory removed by Shutdown.
	StoreDir string
	// ServicePassword is the password of ServiceUser on the embedded server, at least 16
	// characters. "" means a random one, generated at the first start and kept in StoreDir so
	// that clients reconnect after a restart (see Bus.ServiceCredentials). An external NATS
	// takes the service credentials from URL instead (nats://user:password@host).
	ServicePassword string
	// Pools checks the credentials of pool launchers connecting to the embedded server; nil
	// refuses every launcher until Bus.SetPoolVerifier. An external NATS ignores it: there an
	// auth callout decides (docs/nats.md).
	Pools PoolVerifier
	// Logger receives the bus's and the embedded server's logs; nil discards.
	Logger *slog.Logger
}

// withDefaults fills in the listen address and logger.
func (c Config) withDefaults() Config {
	if c.URL == "" && c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate reports every problem with the configuration at once, never quoting a password. An
// empty Listen is valid: it means DefaultListen.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if _, _, err := externalServers(c.URL); err != nil {
			errs = append(errs, err)
		}
		if c.ServicePassword != "" {
			errs = append(errs, errors.New("service password: only for the embedded server; give an external NATS's credentials in its URL (nats://user:password@host)"))
		}
		return errors.Join(errs...)
	}
	if c.Listen != "" {
		if _, _, err := listenAddress(c.Listen); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ServicePassword != "" && len(c.ServicePassword) < minServicePasswordLength {
		errs = append(errs, fmt.Errorf("service password: must be at least %d characters", minServicePasswordLength))
	}
	return errors.Join(errs...)
}

// listenAddress splits an embedded listen address into the server's host and port options;
// the port is -1 (nats-server's "random") for "-1" and "0", as 0 would mean its default 4222.
func listenAddress(listen string) (string, int, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: %w", listen, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("listen address %q: host is required (use 127.0.0.1 or 0.0.0.0)", listen)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("listen address %q: port must be -1, 0 or 1-65535", listen)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}
