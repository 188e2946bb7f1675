package auth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	e := newKeyEnv(t)
	sessions, _ := e.sessions(t)
	_, writerKey := e.createKey(t, "erin", apikey.RoleWriter)
	_, readerKey := e.createKey(t, "frank", apikey.RoleReader)
	token, reader := exchange(t, sessions, writerKey), exchange(t, sessions, readerKey)
	policy := auth.Policy{"/gantry.v1.SessionService/CreateSession": auth.Anonymous, "/gantry.v1.RunService/TriggerRun": apikey.RoleWriter}
	srv := httptest.NewServer(auth.Middleware(sessions, policy, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			_, _ = io.WriteString(w, "anonymous")
			return
		}
		_, _ = io.WriteString(w, p.Actor())
	})))
	t.Cleanup(srv.Close)

	getAt := func(path, authorization string) (int, string, string) {
		// Not a Connect request (no Connect content type): errors come as plain text.
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, strings.TrimSpace(string(body)), res.Header.Get("WWW-Authenticate")
	}
	get := func(authorization string) (int, string, string) {
		return getAt("/gantry.v1.RunService/TriggerRun", authorization)
	}

	if code, body, _ := get("Bearer " + token); code != http.StatusOK || body != "user:erin" {
		t.Fatalf("valid token: %d %q", code, body)
	}
	for _, authorization := range []string{"", "Bearer garbage", "Token " + token, "Bearer " + writerKey} {
		code, body, challenge := get(authorization)
		if code != http.StatusUnauthorized || body != "missing or invalid token" || challenge != "Bearer" {
			t.Errorf("%q: %d %q (challenge %q)", authorization, code, body, challenge)
		}
	}
	// Roles are the interceptor's to check, per procedure: the middleware
	// only authenticates.
	if code, body, _ := get("Bearer " + reader); code != http.StatusOK || body != "user:frank" {
		t.Errorf("reader: %d %q", code, body)
	}
	// A procedure anyone may call carries its credential in its body.
	if code, body, _ := getAt("/gantry.v1.SessionService/CreateSession", ""); code != http.StatusOK || body != "anonymous" {
		t.Errorf("CreateSession without a token: %d %q", code, body)
	}
}

// A Connect call without a valid token is refused in Connect's own terms,
// from the headers alone: the handler never runs, and the body is never
// read (a body still being sent does not hold up the answer).
func TestMiddlewareRefusesConnectCallsBeforeTheBody(t *testing.T) {
	t.Parallel()
	sessions, _ := newKeyEnv(t).sessions(t)
	reached := make(chan struct{}, 1)
	srv := httptest.NewServer(auth.Middleware(sessions, auth.Policy{}, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
	})))
	t.Cleanup(srv.Close)

	body, feed := io.Pipe()
	defer feed.Close()
	go func() { _, _ = feed.Write(make([]byte, 1<<20)) }() // blocks: nobody reads it
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/gantry.v1.RunService/TriggerRun", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(answer), `"code":"unauthenticated"`) ||
		!strings.Contains(string(answer), "missing or invalid token") {
		t.Errorf("answer %d %s", res.StatusCode, answer)
	}
	select {
	case <-reached:
		t.Error("the handler ran without a token")
	default:
	}
}
