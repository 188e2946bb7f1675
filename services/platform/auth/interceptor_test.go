package auth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/gantryhq/gantry/services/platform/auth"
)

const (
	pingProcedure  = "/gantry.test.v1.TestService/Ping"
	watchProcedure = "/gantry.test.v1.TestService/Watch"
)

// syncBuffer is a log sink the server's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// verifierFunc adapts a function to auth.Verifier.
type verifierFunc func(ctx context.Context, token string) (auth.Principal, error)

func (f verifierFunc) Verify(ctx context.Context, token string) (auth.Principal, error) {
	return f(ctx, token)
}

// startTestService serves a unary and a server-streaming procedure behind
// the interceptor; both answer with the caller's actor in the X-Actor header.
func startTestService(t *testing.T, v auth.Verifier) (url string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opt := connect.WithInterceptors(auth.NewInterceptor(v, log))
	actor := func(ctx context.Context) string {
		p, ok := auth.PrincipalFrom(ctx)
		if !ok {
			return "none"
		}
		return p.Actor()
	}
	mux := http.NewServeMux()
	mux.Handle(pingProcedure, connect.NewUnaryHandler(pingProcedure,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
			res := connect.NewResponse(&emptypb.Empty{})
			res.Header().Set("X-Actor", actor(ctx))
			return res, nil
		}, opt))
	mux.Handle(watchProcedure, connect.NewServerStreamHandler(watchProcedure,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty], stream *connect.ServerStream[emptypb.Empty]) error {
			stream.ResponseHeader().Set("X-Actor", actor(ctx))
			for range 2 {
				if err := stream.Send(&emptypb.Empty{}); err != nil {
					return err
				}
			}
			return nil
		}, opt))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

// call makes a unary and a streaming call with the Authorization header
// value auth (none when empty) and returns the actor each saw.
func call(t *testing.T, url, authorization string) (unaryActor string, unaryErr error, streamActor string, streamErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := http.DefaultClient

	ping := connect.NewClient[emptypb.Empty, emptypb.Empty](client, url+pingProcedure)
	req := connect.NewRequest(&emptypb.Empty{})
	if authorization != "" {
		req.Header().Set("Authorization", authorization)
	}
	if res, err := ping.CallUnary(ctx, req); err != nil {
		unaryErr = err
	} else {
		unaryActor = res.Header().Get("X-Actor")
	}

	watch := connect.NewClient[emptypb.Empty, emptypb.Empty](client, url+watchProcedure)
	req = connect.NewRequest(&emptypb.Empty{})
	if authorization != "" {
		req.Header().Set("Authorization", authorization)
	}
	stream, err := watch.CallServerStream(ctx, req)
	if err != nil {
		return unaryActor, unaryErr, "", err
	}
	defer stream.Close()
	n := 0
	for stream.Receive() {
		n++
	}
	if err := stream.Err(); err != nil {
		return unaryActor, unaryErr, "", err
	}
	if n != 2 {
		t.Errorf("stream delivered %d messages, want 2", n)
	}
	return unaryActor, unaryErr, stream.ResponseHeader().Get("X-Actor"), nil
}

func TestInterceptorRequiresAValidToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, clk, _ := newIssuer(t)
	url, logs := startTestService(t, iss)
	valid, err := iss.Issue(ctx, "alice", auth.RoleUser, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiring, err := iss.Issue(ctx, "bob", auth.RoleUser, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	unary, uerr, streamed, serr := call(t, url, "Bearer "+valid)
	if uerr != nil || serr != nil || unary != "user:alice" || streamed != "user:alice" {
		t.Fatalf("valid token: unary %q %v, stream %q %v", unary, uerr, streamed, serr)
	}
	unary, uerr, streamed, serr = call(t, url, "bearer "+valid) // the scheme is case-insensitive
	if uerr != nil || serr != nil || unary != "user:alice" || streamed != "user:alice" {
		t.Fatalf("lower-case scheme: unary %q %v, stream %q %v", unary, uerr, streamed, serr)
	}

	clk.Set(t0.Add(2 * time.Minute))
	refused := map[string]string{
		"no header":        "",
		"garbage":          "Bearer not-a-token",
		"empty bearer":     "Bearer ",
		"basic":            "Basic YWRtaW46c2VjcmV0",
		"token, no scheme": valid,
		"expired":          "Bearer " + expiring,
		"tampered":         "Bearer " + valid[:len(valid)-4] + "AAAA",
	}
	for name, authorization := range refused {
		_, uerr, _, serr := call(t, url, authorization)
		for kind, err := range map[string]error{"unary": uerr, "stream": serr} {
			var cerr *connect.Error
			if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnauthenticated || cerr.Message() != "missing or invalid token" {
				t.Errorf("%s, %s: %v; want unauthenticated: missing or invalid token", name, kind, err)
				continue
			}
			if cerr.Meta().Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s, %s: no WWW-Authenticate challenge", name, kind)
			}
		}
	}

	log := logs.String()
	for _, want := range []string{pingProcedure, watchProcedure, "expired", "no Authorization header"} {
		if !strings.Contains(log, want) {
			t.Errorf("debug log does not mention %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{valid, expiring, valid[len(valid)-30:], "YWRtaW46c2VjcmV0"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds a credential:\n%s", log)
		}
	}
}

func TestInterceptorVerifierFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	url, logs := startTestService(t, verifierFunc(func(context.Context, string) (auth.Principal, error) {
		return auth.Principal{}, errors.New("revocation list unreachable")
	}))
	_, uerr, _, serr := call(t, url, "Bearer x.y.z")
	for kind, err := range map[string]error{"unary": uerr, "stream": serr} {
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s: %v, want unavailable", kind, err)
		}
	}
	if !strings.Contains(logs.String(), "revocation list unreachable") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
}

func TestInterceptorPassesClientCallsThrough(t *testing.T) {
	t.Parallel()
	iss, _, _ := newIssuer(t)
	token, err := iss.Issue(context.Background(), "carol", auth.RoleAdmin, 0)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := startTestService(t, iss)
	// The interceptor on a client must not demand a token of the client's
	// own request; the header is set by the caller as usual.
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](http.DefaultClient, url+pingProcedure,
		connect.WithInterceptors(auth.NewInterceptor(iss, nil)))
	req := connect.NewRequest(&emptypb.Empty{})
	req.Header().Set("Authorization", "Bearer "+token)
	res, err := client.CallUnary(context.Background(), req)
	if err != nil || res.Header().Get("X-Actor") != "user:carol" {
		t.Fatalf("client with interceptor: %v", err)
	}
}

func TestPrincipalFromPlainContext(t *testing.T) {
	t.Parallel()
	if p, ok := auth.PrincipalFrom(context.Background()); ok {
		t.Errorf("principal %+v in an unauthenticated context", p)
	}
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Subject: "dana", Role: auth.RoleAdmin})
	if p, ok := auth.PrincipalFrom(ctx); !ok || p.Actor() != "user:dana" || !p.IsAdmin() {
		t.Errorf("principal %+v, %v", p, ok)
	}
}
