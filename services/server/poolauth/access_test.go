package poolauth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// startRelay publishes the store's events to the EVENTS stream until the test ends, through
// a service connection, and waits until the stream holds at least n messages.
func (e *env) startRelay(t *testing.T, n uint64) jetstream.JetStream {
	t.Helper()
	nc := e.service(t)
	relay, err := eventstore.NewRelay(e.db, nc, eventstore.RelayConfig{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = relay.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, 10*time.Second, "the relay to publish the pools' events", func() bool {
		s, err := js.Stream(ctx, eventstore.EventsStream)
		return err == nil && s.CachedInfo().State.Msgs >= n
	})
	return js
}

// deniedRequest runs request and expects the server to refuse its publish on a subject
// starting with prefix; the request, which then gets no reply, must fail.
func deniedRequest(t *testing.T, l *launcher, prefix string, request func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- request(ctx) }()
	l.waitDeniedPublish(t, prefix)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("request on %s succeeded", prefix)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("request on %s did not end after its context was cancelled", prefix)
	}
}

func TestLauncherIsConfinedToItsPool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secretA := e.createPool(t, "wp_a")
	e.createPool(t, "wp_b")
	svc := e.service(t)
	svcJS := e.startRelay(t, 2)
	a := e.mustConnectLauncher(t, "wp_a", secretA)

	t.Run("publishes its heartbeats, reports and run logs", func(t *testing.T) {
		heartbeats := subscribe(t, svc, protocol.AllHeartbeats)
		publish(t, a.Conn, protocol.HeartbeatSubject("wp_a", "wkr_1"), "beat")
		if pool, worker, ok := protocol.ParseHeartbeatSubject(next(t, heartbeats).Subject); !ok || pool != "wp_a" || worker != "wkr_1" {
			t.Fatalf("heartbeat of %q/%q (%v), want wp_a/wkr_1", pool, worker, ok)
		}
		reports := subscribe(t, svc, protocol.AllReports)
		publish(t, a.Conn, protocol.ReportSubject("wp_a", "phase"), "done")
		if pool, kind, ok := protocol.ParseReportSubject(next(t, reports).Subject); !ok || pool != "wp_a" || kind != "phase" {
			t.Fatalf("report %q of %q (%v), want phase of wp_a", kind, pool, ok)
		}
		logs := subscribe(t, svc, protocol.AllRunLogs)
		publish(t, a.Conn, protocol.RunLogsSubject("wp_a", "run_1"), "a line")
		if msg := next(t, logs); string(msg.Data) != "a line" {
			t.Fatalf("log %q", msg.Data)
		}
	})

	t.Run("receives its workers' messages and broadcasts", func(t *testing.T) {
		workers := subscribe(t, a.Conn, protocol.WorkerSubjects("wp_a"))
		broadcast := subscribe(t, a.Conn, protocol.BroadcastSubject("wp_a"))
		publish(t, svc, protocol.WorkerSubject("wp_a", "wkr_1", "drain"), "drain")
		publish(t, svc, protocol.BroadcastSubject("wp_a"), "cycle")
		if msg := next(t, workers); msg.Subject != protocol.WorkerSubject("wp_a", "wkr_1", "drain") {
			t.Fatalf("worker message on %s", msg.Subject)
		}
		if msg := next(t, broadcast); string(msg.Data) != "cycle" {
			t.Fatalf("broadcast %q", msg.Data)
		}
		if err := workers.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("requests and replies in both directions", func(t *testing.T) {
		registrar, err := svc.Subscribe(protocol.AllReports, func(m *nats.Msg) {
			pool, _, _ := protocol.ParseReportSubject(m.Subject)
			_ = m.Respond([]byte("registered in " + pool))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer registrar.Unsubscribe() //nolint:errcheck // the connection outlives the test
		if err := svc.Flush(); err != nil {
			t.Fatal(err)
		}
		reply, err := a.Request(protocol.ReportSubject("wp_a", "register"), nil, 5*time.Second)
		if err != nil || string(reply.Data) != "registered in wp_a" {
			t.Fatalf("launcher's request: %v, %v", reply, err)
		}

		worker, err := a.Subscribe(protocol.WorkerSubject("wp_a", "wkr_1", "assign"), func(m *nats.Msg) { _ = m.Respond([]byte("accepted")) })
		if err != nil {
			t.Fatal(err)
		}
		defer worker.Unsubscribe() //nolint:errcheck // the connection outlives the test
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		reply, err = svc.Request(protocol.WorkerSubject("wp_a", "wkr_1", "assign"), []byte("run_1"), 5*time.Second)
		if err != nil || string(reply.Data) != "accepted" {
			t.Fatalf("server's request to the worker: %v, %v", reply, err)
		}
	})

	t.Run("cannot subscribe outside its pool", func(t *testing.T) {
		denied := map[string]*nats.Subscription{}
		for _, subject := range []string{
			protocol.WorkerSubjects("wp_b"), protocol.WorkerSubject("wp_b", "wkr_1", "assign"), protocol.BroadcastSubject("wp_b"),
			protocol.PoolInboxPrefix("wp_b") + ".>", protocol.HeartbeatSubject("wp_a", "*"), protocol.AllHeartbeats, protocol.AllReports,
			protocol.AllRunLogs, "gantry.events.>", "gantry.pool.>", "gantry.>", ">", "_INBOX.>", "$JS.API.>",
		} {
			sub, err := a.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			a.waitDeniedSubscribe(t, subject)
			if _, err := sub.NextMsg(5 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("subscription to %s: NextMsg = %v, want %v", subject, err, nats.ErrPermissionViolation)
			}
			denied[subject] = sub
		}

		// Nothing reaches the refused subscriptions: the server delivers to one connection
		// in order, so once the marker arrives anything published before it would have too.
		marker := subscribe(t, a.Conn, protocol.WorkerSubject("wp_a", "wkr_1", "marker"))
		events := subscribe(t, svc, "gantry.events.>")
		publish(t, svc, protocol.WorkerSubject("wp_b", "wkr_1", "assign"), "for pool B")
		publish(t, svc, protocol.BroadcastSubject("wp_b"), "cycle pool B")
		e.decide(t, "wp_b", workerpool.Update{Name: "renamed", Actor: actor, At: time.Now()})
		if msg := next(t, events); msg.Subject != "gantry.events.workerpool.wp_b.WorkerPoolUpdated" {
			t.Fatalf("service saw event %s", msg.Subject)
		}
		publish(t, svc, protocol.WorkerSubject("wp_a", "wkr_1", "marker"), "marker")
		next(t, marker)
		for subject, sub := range denied {
			if n, _, _ := sub.Pending(); n != 0 {
				t.Errorf("refused subscription to %s received %d messages", subject, n)
			}
		}
	})

	t.Run("cannot publish outside its pool", func(t *testing.T) {
		watch := subscribe(t, svc, ">")
		forged := "gantry.events.workerpool.wp_a.WorkerPoolDeleted"
		denied := []string{
			protocol.HeartbeatSubject("wp_b", "wkr_1"), protocol.ReportSubject("wp_b", "register"),
			protocol.WorkerSubject("wp_a", "wkr_1", "assign"), protocol.BroadcastSubject("wp_a"), protocol.BroadcastSubject("wp_b"),
			protocol.WorkerSubject("wp_b", "wkr_1", "assign"), forged, "$JS.API.STREAM.INFO.EVENTS", "_INBOX.someone",
			protocol.PoolInboxPrefix("wp_b") + ".x", "gantry.run.run_1.input", protocol.RunLogsSubject("wp_b", "run_1"),
		}
		for _, subject := range denied {
			if err := a.Publish(subject, []byte("forged")); err != nil {
				t.Fatal(err)
			}
		}
		markerSubject := protocol.HeartbeatSubject("wp_a", "wkr_marker")
		publish(t, a.Conn, markerSubject, "marker")
		for _, subject := range denied {
			a.waitDeniedPublish(t, subject+`"`)
		}
		for {
			msg := next(t, watch)
			if msg.Subject == markerSubject {
				break
			}
			for _, subject := range denied {
				if msg.Subject == subject {
					t.Errorf("the launcher's publish on %s was delivered", subject)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := svcJS.Stream(ctx, eventstore.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.GetLastMsgForSubject(ctx, forged); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("forged event in the EVENTS stream: GetLastMsgForSubject = %v, want %v", err, jetstream.ErrMsgNotFound)
		}
	})

	t.Run("cannot read the EVENTS stream", func(t *testing.T) {
		js, err := jetstream.New(a.Conn)
		if err != nil {
			t.Fatal(err)
		}
		deniedRequest(t, a, "$JS.API.INFO", func(ctx context.Context) error {
			_, err := js.AccountInfo(ctx)
			return err
		})
		deniedRequest(t, a, "$JS.API.STREAM.INFO.EVENTS", func(ctx context.Context) error {
			_, err := js.Stream(ctx, eventstore.EventsStream)
			return err
		})
		deniedRequest(t, a, "$JS.API.CONSUMER.CREATE.EVENTS", func(ctx context.Context) error {
			_, err := js.CreateConsumer(ctx, eventstore.EventsStream, jetstream.ConsumerConfig{Durable: "spy"})
			return err
		})
		deniedRequest(t, a, "$JS.API.DIRECT.GET.EVENTS", func(ctx context.Context) error {
			_, err := a.RequestWithContext(ctx, "$JS.API.DIRECT.GET.EVENTS", []byte(`{"seq":1}`))
			return err
		})
		deniedRequest(t, a, "$JS.API.STREAM.MSG.GET.EVENTS", func(ctx context.Context) error {
			_, err := a.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.EVENTS", []byte(`{"seq":1}`))
			return err
		})

		// The service reads what the launcher could not, and no consumer was made.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := svcJS.Stream(ctx, eventstore.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		first, err := stream.GetMsg(ctx, 1)
		if err != nil || first.Subject != "gantry.events.workerpool.wp_a.WorkerPoolCreated" {
			t.Fatalf("service's get of the first event: %v, %v", first, err)
		}
		if _, err := svcJS.Consumer(ctx, eventstore.EventsStream, "spy"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("consumer made by the launcher: %v, want %v", err, jetstream.ErrConsumerNotFound)
		}
	})
}

func TestRefusedLaunchers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secretA := e.createPool(t, "wp_a")
	secretB := e.createPool(t, "wp_b")
	gone := e.createPool(t, "wp_gone")
	e.decide(t, "wp_gone", workerpool.Delete{Actor: actor, At: time.Now()})
	tests := []struct {
		name string
		opts []nats.Option
	}{
		{"wrong secret", []nats.Option{bus.PoolCredentials("wp_a", secretA+"x")}},
		{"another pool's secret", []nats.Option{bus.PoolCredentials("wp_a", secretB)}},
		{"unknown pool", []nats.Option{bus.PoolCredentials("wp_nobody", secretA)}},
		{"deleted pool", []nats.Option{bus.PoolCredentials("wp_gone", gone)}},
		{"pool secret as the service user", []nats.Option{nats.UserInfo(bus.ServiceUser, secretA)}},
		{"no credentials", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(e.bus.URL(), append([]nats.Option{nats.Timeout(5 * time.Second)}, tt.opts...)...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("err = %v, want %v", err, nats.ErrAuthorization)
			}
		})
	}
	// The right secret of the same pools still works.
	e.mustConnectLauncher(t, "wp_b", secretB)
}

// closedSignal returns an option that closes the returned channel when the connection closes
// for good.
func closedSignal() (nats.Option, <-chan struct{}) {
	closed := make(chan struct{})
	return nats.ClosedHandler(func(*nats.Conn) { close(closed) }), closed
}

func waitClosed(t *testing.T, what string, closed <-chan struct{}) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s is still open after 10s", what)
	}
}

func TestResetClosesConnectionsAndRefusesTheOldSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	oldSecret := e.createPool(t, "wp_a")
	secretB := e.createPool(t, "wp_b")
	svc := e.service(t)
	heartbeats := subscribe(t, svc, protocol.AllHeartbeats)

	// Two launchers of pool A that reconnect quickly and forever, and one of pool B.
	onClose1, closed1 := closedSignal()
	onClose2, closed2 := closedSignal()
	reconnecting := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
	a1 := e.mustConnectLauncher(t, "wp_a", oldSecret, append(reconnecting, onClose1)...)
	a2 := e.mustConnectLauncher(t, "wp_a", oldSecret, append(reconnecting, onClose2)...)
	b := e.mustConnectLauncher(t, "wp_b", secretB, reconnecting...)
	publish(t, a1.Conn, protocol.HeartbeatSubject("wp_a", "wkr_1"), "")
	next(t, heartbeats)

	newSecret := e.resetPool(t, "wp_a")
	if _, err := e.connectLauncher("wp_a", oldSecret); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect with the old secret after the reset: %v, want %v", err, nats.ErrAuthorization)
	}

	n, err := e.bus.DisconnectPool("wp_a")
	if err != nil || n != 2 {
		t.Fatalf("DisconnectPool = %d, %v; want the 2 connections of pool A", n, err)
	}
	// Each client tries to reconnect with the old secret, is refused, and gives up.
	waitClosed(t, "the first launcher's connection", closed1)
	waitClosed(t, "the second launcher's connection", closed2)
	for _, l := range []*launcher{a1, a2} {
		if !errors.Is(l.LastError(), nats.ErrAuthorization) {
			t.Fatalf("closed with %v, want %v", l.LastError(), nats.ErrAuthorization)
		}
	}

	renewed := e.mustConnectLauncher(t, "wp_a", newSecret)
	publish(t, renewed.Conn, protocol.HeartbeatSubject("wp_a", "wkr_1"), "renewed")
	if msg := next(t, heartbeats); string(msg.Data) != "renewed" {
		t.Fatalf("heartbeat %q, want the renewed launcher's", msg.Data)
	}

	// Pool B was left alone.
	publish(t, b.Conn, protocol.HeartbeatSubject("wp_b", "wkr_1"), "b")
	if pool, _, _ := protocol.ParseHeartbeatSubject(next(t, heartbeats).Subject); pool != "wp_b" {
		t.Fatalf("heartbeat of %s, want wp_b", pool)
	}
	if b.Stats().Reconnects != 0 {
		t.Fatal("pool B's launcher was disconnected")
	}
}

func TestDeletedPoolIsDisconnected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := e.createPool(t, "wp_c")
	onClose, closed := closedSignal()
	c := e.mustConnectLauncher(t, "wp_c", secret, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), onClose)

	e.decide(t, "wp_c", workerpool.Delete{Actor: actor, At: time.Now()})
	if n, err := e.bus.DisconnectPool("wp_c"); err != nil || n != 1 {
		t.Fatalf("DisconnectPool = %d, %v; want 1", n, err)
	}
	waitClosed(t, "the deleted pool's connection", closed)
	if !errors.Is(c.LastError(), nats.ErrAuthorization) {
		t.Fatalf("closed with %v, want %v", c.LastError(), nats.ErrAuthorization)
	}
	if _, err := e.connectLauncher("wp_c", secret); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect to a deleted pool: %v, want %v", err, nats.ErrAuthorization)
	}
	if n, err := e.bus.DisconnectPool("wp_c"); err != nil || n != 0 {
		t.Fatalf("second DisconnectPool = %d, %v; want 0", n, err)
	}
}

func TestPoolVerifierSetAfterStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := e.createPool(t, "wp_a")
	ctx := context.Background()
	late, err := bus.Start(ctx, bus.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(late.Shutdown)
	connect := func() error {
		nc, err := nats.Connect(late.URL(), bus.PoolCredentials("wp_a", secret), nats.Timeout(5*time.Second))
		if err == nil {
			nc.Close()
		}
		return err
	}
	if err := connect(); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect before a verifier is set: %v, want %v", err, nats.ErrAuthorization)
	}
	late.SetPoolVerifier(poolauth.New(testenv.Aggregates(t, e.store)))
	if err := connect(); err != nil {
		t.Fatalf("connect once the verifier is set: %v", err)
	}
}
