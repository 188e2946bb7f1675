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

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/services/platform/auth"
)

const (
	pingProcedure   = "/gantry.test.v1.TestService/Ping"
	watchProcedure  = "/gantry.test.v1.TestService/Watch"
	adminProcedure  = "/gantry.test.v1.TestService/Administer"
	signInProcedure = "/gantry.test.v1.TestService/SignIn"
	// strayProcedure is served but missing from the policy.
	strayProcedure = "/gantry.test.v1.TestService/Stray"
)

// testPolicy is the role table of the test service.
var testPolicy = auth.Policy{
	pingProcedure:   apikey.RoleReader,
	watchProcedure:  apikey.RoleReader,
	adminProcedure:  apikey.RoleAdmin,
	signInProcedure: auth.Anonymous,
}

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

// startTestService serves unary procedures and a server-streaming one
// behind the interceptor with testPolicy; each answers with the caller's
// actor in the X-Actor header ("none" without a principal).
func startTestService(t *testing.T, v auth.Verifier) (url string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ic, err := auth.NewInterceptor(v, testPolicy, log)
	if err != nil {
		t.Fatal(err)
	}
	opt := connect.WithInterceptors(ic)
	actor := func(ctx context.Context) string {
		p, ok := auth.PrincipalFrom(ctx)
		if !ok {
			return "none"
		}
		return p.Actor()
	}
	mux := http.NewServeMux()
	for _, proc := range []string{pingProcedure, adminProcedure, signInProcedure, strayProcedure} {
		mux.Handle(proc, connect.NewUnaryHandler(proc,
			func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
				res := connect.NewResponse(&emptypb.Empty{})
				res.Header().Set("X-Actor", actor(ctx))
				return res, nil
			}, opt))
	}
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

// callUnary calls procedure with the Authorization header value
// authorization (none when empty) and returns the actor it saw.
func callUnary(t *testing.T, url, procedure, authorization string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](http.DefaultClient, url+procedure)
	req := connect.NewRequest(&emptypb.Empty{})
	if authorization != "" {
		req.Header().Set("Authorization", authorization)
	}
	res, err := client.CallUnary(ctx, req)
	if err != nil {
		return "", err
	}
	return res.Header().Get("X-Actor"), nil
}

// call makes a unary and a streaming call with the Authorization header
// value auth (none when empty) and returns the actor each saw.
func call(t *testing.T, url, authorization string) (unaryActor string, unaryErr error, streamActor string, streamErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unaryActor, unaryErr = callUnary(t, url, pingProcedure, authorization)

	watch := connect.NewClient[emptypb.Empty, emptypb.Empty](http.DefaultClient, url+watchProcedure)
	req := connect.NewRequest(&emptypb.Empty{})
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
	e := newKeyEnv(t)
	clk := &clock{now: time.Now()}
	sessions, _ := e.sessionsOn(t, clk.Now)
	url, logs := startTestService(t, sessions)
	_, aliceKey := e.createKey(t, "alice", apikey.RoleReader)
	bobID, bobKey := e.createKey(t, "bob", apikey.RoleReader)
	valid := exchange(t, sessions, aliceKey)
	expiring := exchange(t, sessions, bobKey)

	unary, uerr, streamed, serr := call(t, url, "Bearer "+valid)
	if uerr != nil || serr != nil || unary != "user:alice" || streamed != "user:alice" {
		t.Fatalf("valid token: unary %q %v, stream %q %v", unary, uerr, streamed, serr)
	}
	unary, uerr, streamed, serr = call(t, url, "bearer "+valid) // the scheme is case-insensitive
	if uerr != nil || serr != nil || unary != "user:alice" || streamed != "user:alice" {
		t.Fatalf("lower-case scheme: unary %q %v, stream %q %v", unary, uerr, streamed, serr)
	}

	clk.Set(clk.Now().Add(auth.SessionTTL + 2*time.Minute))
	valid = exchange(t, sessions, aliceKey) // issued at the new time
	revokedID, revokedKey := e.createKey(t, "carol", apikey.RoleAdmin)
	revoked := exchange(t, sessions, revokedKey)
	e.revokeKey(t, revokedID)
	refused := map[string]string{
		"no header":        "",
		"garbage":          "Bearer not-a-token",
		"empty bearer":     "Bearer ",
		"basic":            "Basic YWRtaW46c2VjcmV0",
		"token, no scheme": valid,
		"expired":          "Bearer " + expiring,
		"tampered":         "Bearer " + valid[:len(valid)-4] + "AAAA",
		"revoked key":      "Bearer " + revoked,
		"the API key":      "Bearer " + aliceKey,
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
	for _, want := range []string{pingProcedure, watchProcedure, "expired", "no Authorization header", "revoked"} {
		if !strings.Contains(log, want) {
			t.Errorf("debug log does not mention %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{valid, expiring, revoked, valid[len(valid)-30:], "YWRtaW46c2VjcmV0", aliceKey[len(aliceKey)-40:], bobKey[len(bobID)+1:]} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds a credential:\n%s", log)
		}
	}
}

func TestInterceptorChecksRoles(t *testing.T) {
	t.Parallel()
	e := newKeyEnv(t)
	sessions, _ := e.sessions(t)
	url, logs := startTestService(t, sessions)
	_, readerKey := e.createKey(t, "auditor", apikey.RoleReader)
	_, writerKey := e.createKey(t, "ci", apikey.RoleWriter)
	_, adminKey := e.createKey(t, "ops", apikey.RoleAdmin)
	reader, writer, admin := exchange(t, sessions, readerKey), exchange(t, sessions, writerKey), exchange(t, sessions, adminKey)

	for name, tok := range map[string]string{"reader": reader, "writer": writer} {
		_, err := callUnary(t, url, adminProcedure, "Bearer "+tok)
		var cerr *connect.Error
		if !errors.As(err, &cerr) || cerr.Code() != connect.CodePermissionDenied ||
			!strings.Contains(cerr.Message(), "TestService/Administer needs role admin (administrator keys only)") || !strings.Contains(cerr.Message(), "has role "+name) {
			t.Errorf("%s calling an admin procedure: %v; want permission_denied naming role admin and the caller's", name, err)
		}
	}
	if actor, err := callUnary(t, url, adminProcedure, "Bearer "+admin); err != nil || actor != "user:ops" {
		t.Errorf("admin: %q, %v", actor, err)
	}
	for name, tok := range map[string]string{"reader": reader, "writer": writer, "admin": admin} {
		if _, err := callUnary(t, url, pingProcedure, "Bearer "+tok); err != nil {
			t.Errorf("%s calling a reader procedure: %v", name, err)
		}
	}

	// The anonymous procedure needs no token, and gets no principal.
	if actor, err := callUnary(t, url, signInProcedure, ""); err != nil || actor != "none" {
		t.Errorf("anonymous procedure: %q, %v", actor, err)
	}
	// A procedure the table forgot is refused to everyone, admins included.
	for _, authorization := range []string{"", "Bearer " + admin} {
		if _, err := callUnary(t, url, strayProcedure, authorization); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "role table") {
			t.Errorf("procedure missing from the policy (with a token: %v): %v; want permission_denied", authorization != "", err)
		}
	}
	if !strings.Contains(logs.String(), strayProcedure) {
		t.Errorf("the stray procedure is not logged:\n%s", logs.String())
	}

	var perr *auth.PermissionError
	if err := auth.Authorize(auth.Principal{Subject: "auditor", Role: apikey.RoleReader}, adminProcedure, apikey.RoleAdmin); !errors.Is(err, auth.ErrPermissionDenied) ||
		!errors.As(err, &perr) || perr.Need != apikey.RoleAdmin || perr.Have != apikey.RoleReader || strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Authorize: %v; want a *PermissionError matching ErrPermissionDenied, its message not repeating the code", err)
	}
	if _, err := auth.NewInterceptor(sessions, auth.Policy{pingProcedure: "root"}, nil); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("policy with an unknown role: %v", err)
	}
	if _, err := auth.NewInterceptor(sessions, auth.Policy{pingProcedure: ""}, nil); err == nil {
		t.Error("policy with an empty role was accepted")
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
	e := newKeyEnv(t)
	sessions, _ := e.sessions(t)
	_, key := e.createKey(t, "carol", apikey.RoleAdmin)
	token := exchange(t, sessions, key)
	url, _ := startTestService(t, sessions)
	// The interceptor on a client must not demand a token of the client's
	// own request; the header is set by the caller as usual.
	ic, err := auth.NewInterceptor(sessions, testPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](http.DefaultClient, url+pingProcedure, connect.WithInterceptors(ic))
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
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Subject: "dana", Role: apikey.RoleAdmin})
	if p, ok := auth.PrincipalFrom(ctx); !ok || p.Actor() != "user:dana" || !p.IsAdmin() {
		t.Errorf("principal %+v, %v", p, ok)
	}
}
