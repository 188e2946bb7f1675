package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/gantryhq/gantry/services/testenv/await"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startBus starts a bus and shuts it down when the test ends.
func startBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start bus: %v", err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

func connect(t *testing.T, b *Bus, name string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := b.Connect(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func port(t *testing.T, b *Bus) int {
	t.Helper()
	addr, ok := b.Embedded().Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("embedded server address %v is not TCP", b.Embedded().Addr())
	}
	return addr.Port
}

// publishAll creates stream EVENTS on events.> and publishes the given payloads to it.
func publishAll(t *testing.T, nc *nats.Conn, payloads ...string) jetstream.JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	for i, p := range payloads {
		if _, err := js.Publish(ctx, fmt.Sprintf("events.%d", i), []byte(p)); err != nil {
			t.Fatalf("publish %q: %v", p, err)
		}
	}
	return js
}

// consumeAll reads every message of stream EVENTS from the start.
func consumeAll(t *testing.T, js jetstream.JetStream, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	var got []string
	for len(got) < n {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), n, err)
		}
		got = append(got, string(msg.Data()))
	}
	return got
}

func TestEmbeddedJetStream(t *testing.T) {
	t.Parallel()
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if !strings.HasPrefix(b.URL(), "nats://127.0.0.1:") || strings.HasSuffix(b.URL(), ":-1") {
		t.Fatalf("URL = %s, want the actual loopback port", b.URL())
	}
	js := publishAll(t, connect(t, b, "test"), "a", "b", "c")
	if got := strings.Join(consumeAll(t, js, 3), ","); got != "a,b,c" {
		t.Fatalf("consumed %s, want a,b,c", got)
	}
}

func TestEmbeddedStoreSurvivesRestart(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	first := startBus(t, Config{Listen: "127.0.0.1:0", StoreDir: store})
	p := port(t, first)
	nc, err := first.Connect("before")
	if err != nil {
		t.Fatal(err)
	}
	publishAll(t, nc, "kept-1", "kept-2")
	nc.Close()
	first.Shutdown()
	first.Shutdown()

	second := startBus(t, Config{Listen: "127.0.0.1:" + strconv.Itoa(p), StoreDir: store})
	if port(t, second) != p {
		t.Fatalf("restarted on port %d, want %d", port(t, second), p)
	}
	js, err := jetstream.New(connect(t, second, "after"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(consumeAll(t, js, 2), ","); got != "kept-1,kept-2" {
		t.Fatalf("after restart consumed %s, want kept-1,kept-2", got)
	}
}

func TestTemporaryStoreRemovedOnShutdown(t *testing.T) {
	t.Parallel()
	b := startBus(t, Config{Listen: "127.0.0.1:-1"})
	if b.tempStore == "" {
		t.Fatal("no temporary store recorded")
	}
	publishAll(t, connect(t, b, "test"), "x")
	b.Shutdown()
	if _, err := os.Stat(b.tempStore); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary store %s after Shutdown: %v, want it removed", b.tempStore, err)
	}
}

func TestEmbeddedPortInUse(t *testing.T) {
	t.Parallel()
	first := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	_, err := Start(context.Background(), Config{Listen: "127.0.0.1:" + strconv.Itoa(port(t, first)), StoreDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "listening") {
		t.Fatalf("Start on a taken port: err = %v, want the server's listen error", err)
	}
}

func TestExternal(t *testing.T) {
	t.Parallel()
	embedded := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	user, password := embedded.ServiceCredentials()
	external := startBus(t, Config{URL: withCredentials(t, embedded.URL(), user, password)})
	if external.Embedded() != nil {
		t.Fatal("external bus reports an embedded server")
	}
	if external.URL() != embedded.URL() {
		t.Fatalf("URL = %s, want %s without credentials", external.URL(), embedded.URL())
	}
	subConn := connect(t, embedded, "subscriber")
	sub, err := subConn.SubscribeSync("greeting")
	if err != nil {
		t.Fatal(err)
	}
	if err := subConn.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := connect(t, external, "publisher").Publish("greeting", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(msg.Data) != "hello" {
		t.Fatalf("received %v, %v; want hello", msg, err)
	}
	external.Shutdown()
	if !embedded.Embedded().Running() {
		t.Fatal("shutting down an external bus stopped the server")
	}
}

func TestExternalUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	if _, err := Start(context.Background(), Config{URL: "nats://" + closed}); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("Start against a closed port: err = %v, want not reachable", err)
	}
}

func TestConnectFailsFastWhileDisconnectedAndReconnects(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: store})
	p := port(t, b)
	reconnected := make(chan struct{}, 1)
	nc := connect(t, b, "resilient", nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))

	b.Shutdown()
	await.Until(t, 10*time.Second, "client notices the server is gone", func() bool { return nc.Status() == nats.RECONNECTING })
	if err := nc.Publish("events.x", []byte("lost")); err == nil {
		t.Fatal("publish while disconnected was accepted; it should fail instead of being buffered")
	}

	startBus(t, Config{Listen: "127.0.0.1:" + strconv.Itoa(p), StoreDir: store})
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not reconnect within 10s")
	}
	if err := nc.Publish("events.x", []byte("after")); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
}
