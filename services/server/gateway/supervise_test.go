package gateway_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/gateway"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// A gateway whose subscriptions are lost fails, and its supervisor runs it
// again: reports are answered once more.
func TestSupervisedGatewaySubscribesAgain(t *testing.T) {
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	db, store := testenv.EventStore(t, reg)
	n := testenv.NATS(t)
	cmds, err := commands.New(commands.Config{Aggregates: testenv.Aggregates(t, store), Waiter: noWaiter{t}, Secrets: unused{}, Pools: unused{},
		ServerURL: "http://gantry.test:1983", NATSURL: n.URL()})
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	logger := slog.New(slog.NewJSONHandler(&log, nil))
	g, err := gateway.New(gateway.Config{Pool: db, Commands: cmds, NATS: n.Connect(t, "gateway"), HeartbeatTimeout: timeout, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- supervisor.Run(ctx, supervisor.Config{Logger: logger, MinBackoff: 10 * time.Millisecond},
			supervisor.Component{Name: "gateway", Run: g.Run})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor: %v", err)
		}
	})

	probe := n.Connect(t, "probe")
	answered := func() bool {
		_, err := probe.Request(protocol.ReportSubject("wp_probe", "nothing"), []byte(`{}`), 200*time.Millisecond)
		return err == nil
	}
	await.Until(t, 10*time.Second, "the gateway answers", answered)
	if dropped := g.DropSubscriptions(); dropped == 0 {
		t.Fatal("the gateway had no subscriptions to drop")
	}
	await.Until(t, 10*time.Second, "the lost subscription logged with the component", func() bool {
		return log.has(`"component":"gateway"`, `"level":"ERROR"`, "subscription to")
	})
	await.Until(t, 10*time.Second, "the gateway answers again", answered)
	if dropped := g.DropSubscriptions(); dropped == 0 {
		t.Fatal("the restarted gateway did not subscribe")
	}
}

// syncBuffer is a log safe to write from the gateway while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// has reports whether one line of the log holds every part.
func (b *syncBuffer) has(parts ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range strings.SplitSeq(b.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
