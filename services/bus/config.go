// Package bus provides the NATS connection every Gantry service shares: an embedded NATS server
// with JetStream for `gantry dev` and tests, or an external cluster.
package bus

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
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

// Validate reports every problem with the configuration at once. An empty Listen is valid: it
// means DefaultListen.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		for _, raw := range strings.Split(c.URL, ",") {
			if _, err := serverAddress(strings.TrimSpace(raw)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if c.Listen != "" {
		if _, _, err := listenAddress(c.Listen); err != nil {
			errs = append(errs, err)
		}
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

// serverAddress returns the host:port of one external server URL, with NATS's default port.
func serverAddress(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("NATS URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "nats", "tls":
	default:
		return "", fmt.Errorf("NATS URL %q: scheme must be nats or tls", raw)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("NATS URL %q: host is required", raw)
	}
	port := u.Port()
	if port == "" {
		port = "4222"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
