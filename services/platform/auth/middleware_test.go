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
	srv := httptest.NewServer(auth.Middleware(sessions, apikey.RoleWriter, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, p.Actor())
	})))
	t.Cleanup(srv.Close)

	get := func(authorization string) (int, string, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/state/stk_1", nil)
		if err != nil {
			t.Fatal(err)
		}
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

	if code, body, _ := get("Bearer " + token); code != http.StatusOK || body != "user:erin" {
		t.Fatalf("valid token: %d %q", code, body)
	}
	for _, authorization := range []string{"", "Bearer garbage", "Token " + token, "Bearer " + writerKey} {
		code, body, challenge := get(authorization)
		if code != http.StatusUnauthorized || body != "missing or invalid token" || challenge != "Bearer" {
			t.Errorf("%q: %d %q (challenge %q)", authorization, code, body, challenge)
		}
	}
	if code, body, _ := get("Bearer " + reader); code != http.StatusForbidden || !strings.Contains(body, "needs role writer") {
		t.Errorf("reader: %d %q, want 403 naming role writer", code, body)
	}
}
