package launcher

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// The live log goes out a few messages per phase, not one per line: the
// lines that come together travel together, a phase's lines never share a
// message with another's, a message holds at most liveLogBytes, and a line
// that waits alone goes within liveLogDelay.
func TestLiveLogSendsLinesTogether(t *testing.T) {
	ctx := context.Background()
	nc := testenv.NATS(t).Connect(t, "launcher")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureRunLogsStream(ctx, js, 0, 1); err != nil {
		t.Fatal(err)
	}
	l := &Launcher{cfg: Config{Token: protocol.PoolToken{PoolID: "wp_1"}}, js: js}
	l.logp.Store(slog.New(slog.DiscardHandler))
	g := &liveLog{l: l, runID: "run_1", stackID: "stk_1"}

	g.add(run.PhaseInitializing, "init 1")
	g.add(run.PhaseInitializing, "")
	g.add(run.PhaseInitializing, "init 3")
	g.add(run.PhasePlanning, "plan 1")
	long := strings.Repeat("x", liveLogBytes-3)
	g.add(run.PhasePlanning, long)
	g.flush()
	g.add(run.PhaseApplying, "apply 1") // alone: sent by the timer
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("publishes not acknowledged")
	}

	want := []string{"INITIALIZING:init 1\n\ninit 3", "PLANNING:plan 1", "PLANNING:" + long, "APPLYING:apply 1"}
	cons, err := js.OrderedConsumer(ctx, bus.RunLogsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{protocol.RunLogsSubject("wp_1", "run_1")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < len(want) {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		got = append(got, m.Headers().Get(protocol.HeaderPhase)+":"+string(m.Data()))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %.40q, want %.40q", i, got[i], want[i])
		}
	}
	if info, err := cons.Info(ctx); err != nil || info.NumPending != 0 {
		t.Errorf("more messages than %d: %v, %v", len(want), info, err)
	}
}
