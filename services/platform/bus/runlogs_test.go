package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

func TestEnsureRunLogsStream(t *testing.T) {
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	nc := connect(t, b, "test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := EnsureRunLogsStream(ctx, js, 0, 1); err != nil {
		t.Fatalf("create: %v", err)
	}
	s, err := js.Stream(ctx, RunLogsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != protocol.AllRunLogs || cfg.Storage != jetstream.FileStorage || cfg.MaxAge != DefaultRunLogsMaxAge {
		t.Fatalf("config: subjects %v, storage %v, max age %s", cfg.Subjects, cfg.Storage, cfg.MaxAge)
	}

	// Lines published as a launcher does are kept, in order, with their phase.
	for _, line := range []string{"one", "two"} {
		msg := nats.NewMsg(protocol.RunLogsSubject("wp_a", "run_a"))
		msg.Header.Set(protocol.HeaderPhase, "PLANNING")
		msg.Data = []byte(line)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if _, err := js.Publish(ctx, protocol.RunLogsSubject("wp_a", "run_b"), []byte("other run")); err != nil {
		t.Fatal(err)
	}

	// Ensuring again keeps the messages; a new max age is applied.
	if err := EnsureRunLogsStream(ctx, js, 0, 1); err != nil {
		t.Fatalf("ensure again: %v", err)
	}
	if err := EnsureRunLogsStream(ctx, js, time.Hour, 1); err != nil {
		t.Fatalf("update: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != time.Hour || info.State.Msgs != 3 {
		t.Fatalf("after update: max age %s, %d messages; want 1h and 3", info.Config.MaxAge, info.State.Msgs)
	}

	cons, err := js.OrderedConsumer(ctx, RunLogsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{protocol.RunLogsSubject("wp_a", "run_a")}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Headers().Get(protocol.HeaderPhase)+":"+string(m.Data()))
	}
	if len(got) != 2 || got[0] != "PLANNING:one" || got[1] != "PLANNING:two" {
		t.Fatalf("run_a's lines = %v", got)
	}

	if err := EnsureRunLogsStream(ctx, js, -time.Second, 1); err == nil {
		t.Fatal("a negative max age was accepted")
	}
}
