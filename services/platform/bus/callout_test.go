package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// The pool verifier here is a fake: services/server/poolauth imports this package,
// so its Verifier cannot be used by the package's own tests.

// fakePools accepts the secrets it holds, one per pool.
type fakePools struct {
	mu      sync.Mutex
	secrets map[string]string
	err     error // returned for every pool when set
}

func (f *fakePools) VerifyPoolSecret(_ context.Context, pool, secret string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want, ok := f.secrets[pool]
	switch {
	case f.err != nil:
		return 0, f.err
	case !ok:
		return 0, fmt.Errorf("pool %s: %w", pool, ErrRefused)
	case secret != want:
		return 0, fmt.Errorf("pool %s: wrong secret: %w", pool, ErrRefused)
	}
	return 1, nil
}

func (f *fakePools) set(pool, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[pool] = secret
}

const calloutServicePassword = "service-password"

// calloutEnv is a nats-server that delegates client authentication to an
// auth callout, and the callout serving it.
type calloutEnv struct {
	url   string
	pools *fakePools
	logs  *lockedBuffer
}

// lockedBuffer is the callout's log output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCallout starts a nats-server configured as docs/nats.md says, and
// ServeAuthCallout on a service connection, both stopped when the test ends.
// With encrypt, the server encrypts its requests to the callout's xkey.
func startCallout(t *testing.T, encrypt bool, ttl time.Duration) *calloutEnv {
	t.Helper()
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	issuerPub, _ := issuer.PublicKey()
	cfg := CalloutConfig{Issuer: issuer, UserTTL: ttl}
	opts := &server.Options{
		Host:        "127.0.0.1",
		Port:        -1,
		NoSigs:      true,
		NoLog:       true,
		AuthTimeout: 5,
		Users:       []*server.User{{Username: ServiceUser, Password: calloutServicePassword}},
		AuthCallout: &server.AuthCallout{Issuer: issuerPub, AuthUsers: []string{ServiceUser}},
	}
	if encrypt {
		if cfg.XKey, err = nkeys.CreateCurveKeys(); err != nil {
			t.Fatal(err)
		}
		opts.AuthCallout.XKey, _ = cfg.XKey.PublicKey()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}

	svc, err := connectRaw(ns.ClientURL(), nats.UserInfo(ServiceUser, calloutServicePassword))
	if err != nil {
		t.Fatalf("connect the service user: %v", err)
	}
	t.Cleanup(svc.Close)
	e := &calloutEnv{url: ns.ClientURL(), pools: &fakePools{secrets: map[string]string{}}, logs: &lockedBuffer{}}
	cfg.Pools = e.pools
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeAuthCallout(ctx, svc, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeAuthCallout: %v", err)
		}
	})
	// The callout is ready once the server knows its subscription.
	await.Until(t, 10*time.Second, "the callout subscribes", func() bool {
		return ns.GlobalAccount().SubscriptionInterest(server.AuthCalloutSubject)
	})
	return e
}

// launcher connects as a launcher of pool with secret, recording the
// asynchronous errors the server sends it.
func (e *calloutEnv) launcher(pool, secret string, opts ...nats.Option) (*nats.Conn, *asyncErrs, error) {
	errs := &asyncErrs{}
	all := append([]nats.Option{
		PoolCredentials(pool, secret), nats.Timeout(5 * time.Second), nats.NoReconnect(),
		nats.ErrorHandler(errs.record), nats.PermissionErrOnSubscribe(true),
	}, opts...)
	nc, err := nats.Connect(e.url, all...)
	return nc, errs, err
}

func (e *calloutEnv) mustLauncher(t *testing.T, pool, secret string, opts ...nats.Option) (*nats.Conn, *asyncErrs) {
	t.Helper()
	nc, errs, err := e.launcher(pool, secret, opts...)
	if err != nil {
		t.Fatalf("connect as a launcher of %s: %v", pool, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func (e *calloutEnv) service(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := connectRaw(e.url, nats.UserInfo(ServiceUser, calloutServicePassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// asyncErrs collects the errors a connection's error handler receives.
type asyncErrs struct {
	mu   sync.Mutex
	errs []error
}

func (a *asyncErrs) record(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
}

func (a *asyncErrs) has(substring string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, err := range a.errs {
		if strings.Contains(err.Error(), substring) {
			return true
		}
	}
	return false
}

func TestAuthCalloutConfinesLaunchersToTheirPool(t *testing.T) {
	t.Parallel()
	for _, encrypt := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			t.Parallel()
			e := startCallout(t, encrypt, 0)
			e.pools.set("wp_a", "secret-a")
			e.pools.set("wp_b", "secret-b")
			svc := e.service(t)
			a, aErrs := e.mustLauncher(t, "wp_a", "secret-a")

			// Heartbeats reach the services.
			heartbeats := syncSubscribe(t, svc, protocol.AllHeartbeats)
			calloutPublish(t, a, protocol.HeartbeatSubject("wp_a", "wkr_1"), "beat")
			if m, err := heartbeats.NextMsg(5 * time.Second); err != nil || m.Subject != protocol.HeartbeatSubject("wp_a", "wkr_1") {
				t.Fatalf("heartbeat: %v, %v", m, err)
			}

			// Requests on its reports get their replies on its inbox.
			reports, err := svc.Subscribe(protocol.ReportSubject("wp_a", ">"), func(m *nats.Msg) { _ = m.Respond([]byte("ok")) })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = reports.Unsubscribe() })
			if err := svc.Flush(); err != nil {
				t.Fatal(err)
			}
			reply, err := a.Request(protocol.ReportSubject("wp_a", "register"), []byte("hello"), 5*time.Second)
			if err != nil || string(reply.Data) != "ok" {
				t.Fatalf("request on its reports: %v, %v", reply, err)
			}

			// It receives its workers' messages and answers requests once.
			work := syncSubscribe(t, a, protocol.WorkerSubjects("wp_a"))
			go func() {
				if m, err := work.NextMsg(5 * time.Second); err == nil {
					_ = m.Respond([]byte("assigned"))
				}
			}()
			if answer, err := svc.Request(protocol.WorkerSubject("wp_a", "wkr_1", "assign"), []byte("run"), 5*time.Second); err != nil || string(answer.Data) != "assigned" {
				t.Fatalf("launcher's answer: %v, %v", answer, err)
			}

			// Another pool's subjects and the events are denied.
			calloutPublish(t, a, protocol.HeartbeatSubject("wp_b", "wkr_1"), "forged")
			await.Until(t, 10*time.Second, "the forged heartbeat is denied", func() bool {
				return aErrs.has(`Permissions Violation for Publish to "` + protocol.HeartbeatSubject("wp_b", "wkr_1"))
			})
			if m, err := heartbeats.NextMsg(100 * time.Millisecond); err == nil {
				t.Fatalf("forged heartbeat delivered: %s", m.Subject)
			}
			for _, subject := range []string{"gantry.events.>", protocol.WorkerSubjects("wp_b"), "_INBOX.>"} {
				sub, err := a.SubscribeSync(subject)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := sub.NextMsg(5 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
					t.Fatalf("subscribe to %s: %v, want a permissions violation", subject, err)
				}
			}
		})
	}
}

func TestAuthCalloutRefusesWrongCredentials(t *testing.T) {
	t.Parallel()
	e := startCallout(t, false, 0)
	e.pools.set("wp_a", "secret-a")
	for _, tc := range []struct{ name, user, password string }{
		{"wrong secret", "wp_a", "secret-b"},
		{"unknown pool", "wp_zz", "secret-a"},
		{"not a pool id", "wp_a.>", "secret-a"},
		{"service user with the wrong password", ServiceUser, "secret-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Only the credentials: a user that is no pool id makes no inbox prefix.
			nc, err := connectRaw(e.url, nats.UserInfo(tc.user, tc.password))
			if err == nil {
				nc.Close()
				t.Fatalf("%s connected", tc.user)
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect: %v, want an authorization violation", err)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		nc, err := connectRaw(e.url)
		if err == nil {
			nc.Close()
			t.Fatal("connected without credentials")
		}
	})
	t.Run("verifier failure", func(t *testing.T) {
		e.pools.mu.Lock()
		e.pools.err = errors.New("database down")
		e.pools.mu.Unlock()
		defer func() { e.pools.mu.Lock(); e.pools.err = nil; e.pools.mu.Unlock() }()
		if nc, _, err := e.launcher("wp_a", "secret-a"); err == nil {
			nc.Close()
			t.Fatal("connected while the verifier fails")
		}
	})
	if logs := e.logs.String(); !strings.Contains(logs, `msg="NATS connection refused" component=nats-auth-callout`) || !strings.Contains(logs, "pool_id=wp_zz") {
		t.Errorf("the callout did not log its refusals:\n%s", logs)
	}
	if strings.Contains(e.logs.String(), "secret-") {
		t.Fatalf("the logs contain a secret:\n%s", e.logs.String())
	}
}

func TestAuthCalloutUserExpiryEndsAResetPoolsConnections(t *testing.T) {
	t.Parallel()
	e := startCallout(t, false, 2*time.Second)
	e.pools.set("wp_a", "old")
	reconnected := make(chan struct{}, 1)
	closed := make(chan struct{})
	// Reconnecting as a launcher does (launcher.connect).
	allowReconnect := func(o *nats.Options) error { o.AllowReconnect = true; return nil }
	_, _ = e.mustLauncher(t, "wp_a", "old",
		allowReconnect, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))

	// While the secret holds, the expired JWT is renewed by a reconnect.
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("the launcher did not reconnect after its user JWT expired")
	}
	// After a reset, the reconnects are refused and the connection ends.
	e.pools.set("wp_a", "new")
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("the launcher's connection outlived the reset")
	}
}

func TestCalloutConfigValidate(t *testing.T) {
	account, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
	curve, _ := nkeys.CreateCurveKeys()
	accountPub, _ := account.PublicKey()
	publicOnly, _ := nkeys.FromPublicKey(accountPub)
	pools := &fakePools{}
	if err := (CalloutConfig{Issuer: account, XKey: curve, Pools: pools}).Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, cfg := range map[string]CalloutConfig{
		"no issuer":         {Pools: pools},
		"user issuer":       {Issuer: user, Pools: pools},
		"public-only key":   {Issuer: publicOnly, Pools: pools},
		"account xkey":      {Issuer: account, XKey: account, Pools: pools},
		"no pools":          {Issuer: account},
		"negative user TTL": {Issuer: account, Pools: pools, UserTTL: -time.Second},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// syncSubscribe subscribes nc to subject and makes sure the server has the
// subscription.
func syncSubscribe(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// calloutPublish publishes and flushes, so that the server has the message
// when it returns.
func calloutPublish(t *testing.T, nc *nats.Conn, subject, data string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}
