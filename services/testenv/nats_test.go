package testenv

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/services/testenv/await"
)

// publish publishes to JetStream, retrying while the restarted server recovers its streams.
func publish(t *testing.T, js jetstream.JetStream, subject, data string) {
	t.Helper()
	var lastErr error
	await.Until(t, 15*time.Second, "publish "+data+" is acknowledged", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, lastErr = js.Publish(ctx, subject, []byte(data))
		return lastErr == nil
	})
}

func TestNATSRestartKeepsStreamAndClientReconnects(t *testing.T) {
	t.Parallel()
	n := NATS(t)
	url := n.URL()
	nc := n.Connect(t, "survivor")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "events.a", "1")
	publish(t, js, "events.a", "2")

	n.Restart(t)
	if n.URL() != url {
		t.Fatalf("URL changed across the restart: %s -> %s", url, n.URL())
	}
	await.Until(t, 15*time.Second, "the client reconnects", func() bool { return nc.Stats().Reconnects > 0 && nc.IsConnected() })
	publish(t, js, "events.a", "3")

	cons, err := js.OrderedConsumer(ctx, "EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("message %d: %v", want, err)
		}
		if got := string(msg.Data()); got != fmt.Sprint(want) {
			t.Fatalf("message %d = %s", want, got)
		}
	}
}

func TestNATSStopKeepsServerDownUntilStart(t *testing.T) {
	t.Parallel()
	n := NATS(t)
	nc := n.Connect(t, "waiting")

	n.Stop(t)
	n.Stop(t)
	if n.Bus() != nil {
		t.Fatal("Bus() is not nil while stopped")
	}
	await.Until(t, 15*time.Second, "the client sees the server gone", func() bool { return nc.Status() == nats.RECONNECTING })
	if _, err := nats.Connect(n.URL(), nats.Timeout(time.Second)); !errors.Is(err, nats.ErrNoServers) {
		t.Fatalf("connect to a stopped server: err = %v, want ErrNoServers", err)
	}

	n.Start(t)
	await.Until(t, 15*time.Second, "the client reconnects", nc.IsConnected)
	if err := nc.Publish("ping", nil); err != nil {
		t.Fatal(err)
	}
}
