package ui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestANSISegments(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []segment
	}{
		{"plain <b>&</b>", []segment{{Text: "plain <b>&</b>"}}},
		{"\x1b[32mgreen\x1b[0m after", []segment{{Text: "green", Class: "ansi-fg-green"}, {Text: " after"}}},
		{"\x1b[1;31mbold red\x1b[22m red\x1b[39m plain", []segment{{Text: "bold red", Class: "ansi-bold ansi-fg-red"}, {Text: " red", Class: "ansi-fg-red"}, {Text: " plain"}}},
		{"\x1b[4m\x1b[94mbright\x1b[m", []segment{{Text: "bright", Class: "ansi-underline ansi-fg-blue ansi-bright"}}},
		// Other escapes and control characters are dropped; a cut sequence ends the line.
		{"a\x1b[2Kb\x07c\x1b]0;title\x07d\x1b[3", []segment{{Text: "abc0;titled"}}},
	} {
		got := ansiSegments(c.in)
		var joined []segment
		// Adjacent segments of the same class say the same thing.
		for _, s := range got {
			if n := len(joined); n > 0 && joined[n-1].Class == s.Class {
				joined[n-1].Text += s.Text
				continue
			}
			joined = append(joined, s)
		}
		if !reflect.DeepEqual(joined, c.want) {
			t.Errorf("ansiSegments(%q) = %#v, want %#v", c.in, joined, c.want)
		}
	}
}

func postForm(path string, form url.Values, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://gantry.example"+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

func TestCheckPost(t *testing.T) {
	u := &UI{}
	session := &http.Cookie{Name: sessionCookie, Value: "header.payload.signature"}
	good := url.Values{csrfField: {csrfToken(session.Value)}}
	if err := u.checkPost(postForm("/runs/run_1/confirm", good, session)); err != nil {
		t.Fatalf("the session's token: %v", err)
	}
	other := &http.Cookie{Name: sessionCookie, Value: "another.session.token"}
	for name, r := range map[string]*http.Request{
		"no token":            postForm("/runs/run_1/confirm", url.Values{}, session),
		"another's token":     postForm("/runs/run_1/confirm", good, other),
		"no session":          postForm("/runs/run_1/confirm", good),
		"sign-in, no cookie":  postForm("/sign-in", url.Values{csrfField: {"x"}}),
		"sign-in, wrong form": postForm("/sign-in", url.Values{csrfField: {"x"}}, &http.Cookie{Name: signInCookie, Value: "y"}),
	} {
		if err := u.checkPost(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cross := postForm("/runs/run_1/confirm", good, session)
	cross.Header.Set("Origin", "https://evil.example")
	if err := u.checkPost(cross); err == nil || !strings.Contains(err.Error(), "another site") {
		t.Errorf("another origin: %v", err)
	}
	proxied := postForm("/runs/run_1/confirm", good, session)
	proxied.Host = "gantry-internal:1983"
	proxied.Header.Set("Origin", "https://gantry.example")
	proxied.Header.Set("X-Forwarded-Host", "gantry.example")
	if err := u.checkPost(proxied); err != nil {
		t.Errorf("through a proxy that rewrites Host: %v", err)
	}
	same := postForm("/sign-in", url.Values{csrfField: {"y"}}, &http.Cookie{Name: signInCookie, Value: "y"})
	same.Header.Set("Origin", "http://gantry.example")
	if err := u.checkPost(same); err != nil {
		t.Errorf("sign-in form from this site: %v", err)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/runs/run_1?done=x":    "/runs/run_1?done=x",
		"":                      "/stacks",
		"https://evil.example/": "/stacks",
		"//evil.example/":       "/stacks",
		"/\\evil.example":       "/stacks",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDevSignInIsOneTime(t *testing.T) {
	d := NewDevSignIn(func(context.Context) (string, error) { return "", errors.New("unused") })
	token := strings.TrimPrefix(d.Link("http://x"), "http://x"+DevSignInPath+"?token=")
	if err := d.take("wrong"); err == nil {
		t.Fatal("a wrong token was taken")
	}
	if err := d.take(token); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := d.take(token); err == nil || !strings.Contains(err.Error(), "used already") {
		t.Fatalf("second use: %v", err)
	}
	old := NewDevSignIn(nil)
	old.expires = time.Now().Add(-time.Second)
	if err := old.take(old.token); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired link: %v", err)
	}
}

func TestPagesParse(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != len(pageNames) {
		t.Fatalf("%d pages, want %d", len(pages), len(pageNames))
	}
}

// Calls of procedures the server does not have are not pages: they get the
// plain 404 that Connect clients read as Unimplemented, even as POSTs
// without a CSRF token.
func TestProceduresAreNotPages(t *testing.T) {
	u := &UI{}
	for _, path := range []string{"/gantry.v1.NoSuchService/Call", "/grpc.health.v2.Health/Check"} {
		w := httptest.NewRecorder()
		u.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}")))
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Security-Policy") != "" {
			t.Errorf("POST %s: %d %v, want a plain 404", path, w.Code, w.Header())
		}
	}
	if procedureLike("/stacks/web.prod") || !procedureLike("/a.b/c") {
		t.Error("procedureLike looks past the first segment, or misses a dotted one")
	}
}

// Without a DevSignIn (gantry server never has one: runServer makes it only
// for gantry dev's credentials file), /dev-sign-in is not a page.
func TestNoDevSignInOutsideGantryDev(t *testing.T) {
	cfg := Config{API: http.NotFoundHandler(), Sessions: new(auth.Sessions), Policy: auth.Policy{},
		Head: func(context.Context) (int64, error) { return 0, nil }}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	u.ServeHTTP(w, httptest.NewRequest(http.MethodGet, DevSignInPath+"?token=x", nil))
	if w.Code != http.StatusNotFound {
		t.Fatalf("GET %s without gantry dev: %d, want 404", DevSignInPath, w.Code)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Fatalf("CSP %q", got)
	}
	cfg.DevSignIn = NewDevSignIn(func(context.Context) (string, error) { return "", errors.New("no key here") })
	if u, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	u.ServeHTTP(w, httptest.NewRequest(http.MethodGet, DevSignInPath+"?token=wrong", nil))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not the one gantry dev printed") {
		t.Fatalf("a wrong dev token: %d\n%s", w.Code, w.Body.String())
	}
}

// An action form ends in a redirect with the action's notice, a refused
// call in the API's answer, and an unknown action in a 404 naming the
// known ones, without calling anything.
func TestAct(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	u := &UI{pages: pages, log: slog.New(slog.DiscardHandler)}
	var called []string
	actions := []action{
		{"lock", "locked", func(context.Context) error { called = append(called, "lock"); return nil }},
		{"unlock", "unlocked", func(context.Context) error {
			called = append(called, "unlock")
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("locked by someone else"))
		}},
	}
	do := func(name string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/stacks/web/"+name, nil)
		r.SetPathValue("action", name)
		w := httptest.NewRecorder()
		u.act(w, r, "stack", "/stacks/web", actions...)
		return w
	}
	if w := do("lock"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/stacks/web?done=locked" {
		t.Errorf("lock: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := do("unlock"); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "locked by someone else") {
		t.Errorf("refused unlock: %d\n%s", w.Code, w.Body.String())
	}
	w := do("frobnicate")
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `action: &#34;frobnicate&#34; is not an action of a stack (lock, unlock).`) {
		t.Errorf("unknown action: %d\n%s", w.Code, w.Body.String())
	}
	if !reflect.DeepEqual(called, []string{"lock", "unlock"}) {
		t.Errorf("called %v", called)
	}
}

func TestTerminal(t *testing.T) {
	ended := map[gantryv1.RunState]bool{
		gantryv1.RunState_RUN_STATE_FINISHED: true, gantryv1.RunState_RUN_STATE_FAILED: true, gantryv1.RunState_RUN_STATE_DISCARDED: true,
		gantryv1.RunState_RUN_STATE_STOPPED: true, gantryv1.RunState_RUN_STATE_CANCELED: true, gantryv1.RunState_RUN_STATE_SKIPPED: true,
	}
	for v := range gantryv1.RunState_name {
		s := gantryv1.RunState(v)
		if got := terminal(s); got != ended[s] {
			t.Errorf("terminal(%s) = %v", s, got)
		}
	}
}
