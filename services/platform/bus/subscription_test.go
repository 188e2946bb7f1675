package bus

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestWatchClosed(t *testing.T) {
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	for _, tc := range []struct {
		name string
		// kill closes one of the subscriptions (async on a.x, chan on a.y)
		// or their connection; want is the subject reported, "" for none.
		kill func(t *testing.T, nc *nats.Conn, async, ch *nats.Subscription)
		want string
	}{
		{name: "nothing closes", kill: func(*testing.T, *nats.Conn, *nats.Subscription, *nats.Subscription) {}},
		{name: "async subscription unsubscribed", want: "a.x", kill: func(t *testing.T, _ *nats.Conn, async, _ *nats.Subscription) {
			if err := async.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "channel subscription unsubscribed", want: "a.y", kill: func(t *testing.T, _ *nats.Conn, _, ch *nats.Subscription) {
			if err := ch.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "channel subscription drained", want: "a.y", kill: func(t *testing.T, _ *nats.Conn, _, ch *nats.Subscription) {
			if err := ch.Drain(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "closed before it is watched", want: "a.x", kill: nil},
		{name: "connection closed", want: "a.", kill: func(_ *testing.T, nc *nats.Conn, _, _ *nats.Subscription) { nc.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := connect(t, b, "watch")
			async, err := nc.Subscribe("a.x", func(*nats.Msg) {})
			if err != nil {
				t.Fatal(err)
			}
			ch, err := nc.ChanSubscribe("a.y", make(chan *nats.Msg, 1))
			if err != nil {
				t.Fatal(err)
			}
			if tc.kill == nil {
				if err := async.Unsubscribe(); err != nil {
					t.Fatal(err)
				}
			}
			closed := WatchClosed(async, ch)
			if tc.kill != nil {
				tc.kill(t, nc, async, ch)
			}
			// Closing is synchronous but for the async subscription's
			// dispatcher; nothing reported within the bound is nothing.
			bound := 5 * time.Second
			if tc.want == "" {
				bound = 200 * time.Millisecond
			}
			select {
			case subject := <-closed:
				if tc.want == "" || !strings.HasPrefix(subject, tc.want) {
					t.Fatalf("closed %q, want %q", subject, tc.want)
				}
			case <-time.After(bound):
				if tc.want != "" {
					t.Fatalf("no closed subscription reported, want %q", tc.want)
				}
			}
		})
	}
}
