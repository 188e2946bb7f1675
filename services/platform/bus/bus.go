package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// reconnectWait is the pause between reconnect attempts: short, because the usual cause is a
// restart of the server and every service waits on it.
const reconnectWait = 250 * time.Millisecond

// Bus is the NATS every service connects to: the embedded server or an external one.
type Bus struct {
	url       string
	logger    *slog.Logger
	server    *server.Server // nil for an external NATS
	auth      *authenticator // nil for an external NATS
	cred      credential     // what Connect authenticates with; none if an external URL had none
	tempStore string         // removed on Shutdown; "" when the caller owns the store

	shutdownOnce sync.Once
}

// Start starts the embedded server, or checks once that the external one is reachable.
func Start(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bus config: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.URL == "" {
		return startEmbedded(ctx, cfg)
	}
	url, cred, err := externalServers(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("bus config: %w", err)
	}
	if err := probe(ctx, url); err != nil {
		return nil, err
	}
	cfg.Logger.Info("using external NATS", "url", url, "authenticated", cred.user != "")
	return &Bus{url: url, logger: cfg.Logger, cred: cred}, nil
}

// URL returns the client URL of the bus, without credentials: it is what pool tokens carry.
func (b *Bus) URL() string { return b.url }

// ServiceCredentials returns the user and password Connect authenticates with: ServiceUser and
// the embedded server's service password, or those of the external NATS's URL ("", "" if it
// had none). Never log the password.
func (b *Bus) ServiceCredentials() (user, password string) { return b.cred.user, b.cred.password }

// SetPoolVerifier sets the verifier of pool launchers' credentials when it could not be given in
// Config.Pools, because the bus had to start before the event store it reads (gantry dev). Until
// then every launcher is refused. It does nothing for an external NATS.
func (b *Bus) SetPoolVerifier(v PoolVerifier) {
	if b.auth != nil {
		b.auth.setPools(v)
	}
}

// ErrNotEmbedded is returned for what only the embedded server can do.
var ErrNotEmbedded = errors.New("not possible on an external NATS")

// DisconnectPool closes every connection of pool's launchers to the embedded server, and
// refuses those still being authenticated, so that after a reset or a deletion (call it once
// the event is appended) no launcher keeps the old credentials' access: a launcher that
// reconnects is checked again. It returns how many connections it closed, or ErrNotEmbedded for
// an external NATS.
func (b *Bus) DisconnectPool(pool string) (int, error) {
	if b.auth == nil {
		return 0, fmt.Errorf("close the NATS connections of pool %s: %w", pool, ErrNotEmbedded)
	}
	n := b.auth.disconnect(pool)
	b.logger.Info("closed the NATS connections of a pool", "pool_id", pool, "connections", n)
	return n, nil
}

// Embedded returns the embedded server, or nil when the bus is an external NATS.
func (b *Bus) Embedded() *server.Server { return b.server }

// Connect opens a client connection for a long-running service, authenticated with the service
// credentials (full permissions). It reconnects forever, and publishes made while disconnected
// fail at once (no reconnect buffer): a buffered publish would be sent after later ones on
// reconnect, and callers rely on their own retries and ordering.
// Disconnects, reconnects and asynchronous errors are logged. opts are applied after the
// defaults and so override them.
func (b *Bus) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	logger := b.logger.With("nats_client", name)
	defaults := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("disconnected from NATS", "err", err)
			} else {
				logger.Info("disconnected from NATS")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Error("NATS asynchronous error", "subject", sub.Subject, "err", err)
				return
			}
			logger.Error("NATS asynchronous error", "err", err)
		}),
	}
	if b.cred.user != "" {
		defaults = append(defaults, nats.UserInfo(b.cred.user, b.cred.password))
	}
	nc, err := nats.Connect(b.url, append(defaults, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect %q to NATS at %s: %w", name, b.url, err)
	}
	return nc, nil
}

// Shutdown stops the embedded server and waits until it has stopped, then removes a temporary
// store. It does nothing for an external NATS, and nothing the second time.
func (b *Bus) Shutdown() {
	b.shutdownOnce.Do(func() {
		if b.server == nil {
			return
		}
		b.server.Shutdown()
		b.server.WaitForShutdown()
		if b.tempStore != "" {
			if err := os.RemoveAll(b.tempStore); err != nil {
				b.logger.Warn("remove temporary JetStream store", "dir", b.tempStore, "err", err)
			}
		}
		b.logger.Info("embedded NATS stopped")
	})
}
