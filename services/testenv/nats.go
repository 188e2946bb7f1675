package testenv

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/platform/bus"
)

// natsStartTimeout bounds starting the embedded server.
const natsStartTimeout = 30 * time.Second

// NATSOption adjusts the server NATS starts.
type NATSOption func(*natsOptions)

type natsOptions struct {
	logger *slog.Logger
}

// WithNATSLogger sends the server's and the bus's logs to logger instead of discarding them.
func WithNATSLogger(logger *slog.Logger) NATSOption {
	return func(o *natsOptions) { o.logger = logger }
}

// NATSServer is an embedded NATS server with JetStream owned by one test. It can be stopped and
// started again on the same port and store, which is how tests check surviving a NATS restart.
type NATSServer struct {
	logger   *slog.Logger
	storeDir string

	mu     sync.Mutex
	listen string // 127.0.0.1:<port> once the first start picked the port
	url    string
	bus    *bus.Bus // nil while stopped
	pools  bus.PoolVerifier
}

// NATS starts an embedded server on a random loopback port with JetStream file storage in a
// temporary directory, and shuts it down when the test ends.
func NATS(t testing.TB, opts ...NATSOption) *NATSServer {
	t.Helper()
	o := natsOptions{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	// TempDir before the shutdown cleanup, so that the store is removed after the server stops.
	n := &NATSServer{logger: o.logger, storeDir: t.TempDir(), listen: "127.0.0.1:-1"}
	n.Start(t)
	t.Cleanup(n.shutdown)
	return n
}

// URL returns the client URL; it stays the same across restarts.
func (n *NATSServer) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.url
}

// Bus returns the running bus, or nil while stopped. A restart makes a new one: connect through
// it once and let the client reconnect rather than holding on to the *bus.Bus.
func (n *NATSServer) Bus() *bus.Bus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bus
}

// Connect connects a client as Gantry's services, named name; it is closed when the test ends.
func (n *NATSServer) Connect(t testing.TB, name string) *nats.Conn {
	t.Helper()
	nc, err := n.Bus().Connect(name)
	if err != nil {
		t.Fatalf("connect %s to NATS: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Stop shuts the server down; clients keep trying to reconnect. Stopping twice does nothing.
func (n *NATSServer) Stop(t testing.TB) {
	t.Helper()
	n.shutdown()
}

// Start starts the server again on the same port and store; starting a running server does
// nothing. The test fails if the port was taken meanwhile.
func (n *NATSServer) Start(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.bus != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsStartTimeout)
	defer cancel()
	b, err := bus.Start(ctx, bus.Config{Listen: n.listen, StoreDir: n.storeDir, Logger: n.logger, Pools: n.pools})
	if err != nil {
		t.Fatalf("testenv: start NATS: %v", err)
	}
	if addr, ok := b.Embedded().Addr().(*net.TCPAddr); ok {
		n.listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
	}
	n.bus, n.url = b, b.URL()
}

// SetPoolVerifier lets pool launchers connect with the credentials v
// accepts, now and after every restart (a Gantry server sets the verifier
// on the bus it starts with; a restart makes a new bus).
func (n *NATSServer) SetPoolVerifier(v bus.PoolVerifier) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pools = v
	if n.bus != nil {
		n.bus.SetPoolVerifier(v)
	}
}

// Restart stops the server and starts it again on the same port and store.
func (n *NATSServer) Restart(t testing.TB) {
	t.Helper()
	n.Stop(t)
	n.Start(t)
}

func (n *NATSServer) shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.bus != nil {
		n.bus.Shutdown()
		n.bus = nil
	}
}

// Outage stops the server for d and starts it again on the same port and store.
func (n *NATSServer) Outage(t testing.TB, d time.Duration) {
	t.Helper()
	n.Stop(t)
	time.Sleep(d) // the outage itself: its length is what the test is about
	n.Start(t)
}
