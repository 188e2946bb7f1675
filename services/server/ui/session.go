package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
)

const (
	// sessionCookie holds the session token (a JWT of SessionService).
	sessionCookie = "gantry_session"
	// signInCookie holds the sign-in form's one-time token, so that another
	// site cannot sign a browser in with its own key (login CSRF).
	signInCookie = "gantry_sign_in"
	// csrfField is the name of every form's CSRF token field.
	csrfField = "csrf"
)

// session is the signed-in user of a request.
type session struct {
	token     string
	principal auth.Principal
	csrf      string
	can       func(procedure string) bool
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) (*session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*session)
	return s, ok
}

// csrfToken derives a session's CSRF token: an HMAC of a fixed label keyed
// with the session token. Only a page of the UI, served to the holder of
// the HttpOnly cookie, can know it; every replica derives the same one.
func csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("gantry-ui-csrf-v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tokenInterceptor sends the session token of the call's context as the
// bearer token, as every API client does.
type tokenInterceptor struct{}

type tokenKey struct{}

func withToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

func setToken(ctx context.Context, h http.Header) {
	if t, ok := ctx.Value(tokenKey{}).(string); ok && t != "" {
		h.Set("Authorization", "Bearer "+t)
	}
}

func (tokenInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		setToken(ctx, req.Header())
		return next(ctx, req)
	}
}

func (tokenInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		setToken(ctx, conn.RequestHeader())
		return conn
	}
}

func (tokenInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// signedIn runs h for a signed-in user: the session cookie's token,
// verified, is in the request's context (and sent with every API call);
// without one the browser goes to the sign-in page.
func (u *UI) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			u.toSignIn(w, r)
			return
		}
		p, err := u.cfg.Sessions.Verify(r.Context(), c.Value)
		switch {
		case errors.Is(err, auth.ErrInvalidToken):
			clearCookie(w, r, sessionCookie)
			u.toSignIn(w, r)
			return
		case err != nil:
			u.log.WarnContext(r.Context(), "ui: cannot check a session", "err", err.Error())
			u.render(w, r, http.StatusServiceUnavailable, "error", page{Title: "Unavailable", Data: errorData{Message: "Your session cannot be checked now; try again."}})
			return
		}
		s := &session{token: c.Value, principal: p, csrf: csrfToken(c.Value), can: func(proc string) bool {
			need, ok := u.cfg.Policy[proc]
			return ok && auth.Authorize(p, proc, need) == nil
		}}
		ctx := context.WithValue(withToken(r.Context(), c.Value), sessionKey{}, s)
		h(w, r.WithContext(ctx))
	}
}

func (u *UI) toSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.Header.Get("Accept") == "text/event-stream" {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// checkPost refuses a state-changing request that did not come from a page
// of the UI: another origin, or no valid CSRF token (the session's, or the
// sign-in form's one-time token).
func (u *UI) checkPost(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		ou, err := url.Parse(o)
		// Behind a proxy that rewrites Host, X-Forwarded-Host is the one the
		// browser used.
		if err != nil || (ou.Host != r.Host && ou.Host != r.Header.Get("X-Forwarded-Host")) {
			return errors.New("the request came from another site")
		}
	}
	if err := r.ParseForm(); err != nil {
		return errors.New("the form could not be read")
	}
	got := r.PostForm.Get(csrfField)
	if got == "" {
		return errors.New("the form carries no CSRF token")
	}
	var want string
	if r.URL.Path == "/sign-in" {
		c, err := r.Cookie(signInCookie)
		if err != nil {
			return errors.New("the sign-in form expired")
		}
		want = c.Value
	} else {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			return errors.New("you are not signed in")
		}
		want = csrfToken(c.Value)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("the CSRF token is wrong")
	}
	return nil
}

// secure reports whether the browser reached the UI over TLS, so that
// cookies are marked Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: expires, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

type signInData struct {
	Next  string
	Error string
	Dev   bool
}

func (u *UI) signInPage(w http.ResponseWriter, r *http.Request) {
	u.showSignIn(w, r, http.StatusOK, "")
}

func (u *UI) showSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	setCookie(w, r, signInCookie, token, time.Now().Add(30*time.Minute))
	u.render(w, r, status, "signin", page{Title: "Sign in", CSRF: token, Data: signInData{Next: safeNext(r.FormValue("next")), Error: msg, Dev: u.cfg.DevSignIn != nil}})
}

// safeNext keeps a redirect after sign-in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/stacks"
	}
	return next
}

// signIn exchanges the form's API key for a session token
// (SessionService.CreateSession) and keeps it in the session cookie.
func (u *UI) signIn(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.PostForm.Get("api_key"))
	if key == "" {
		u.showSignIn(w, r, http.StatusBadRequest, "API key: enter the key (ak_…) you were given.")
		return
	}
	u.startSession(w, r, key, safeNext(r.PostForm.Get("next")))
}

func (u *UI) startSession(w http.ResponseWriter, r *http.Request, key, next string) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	res, err := u.c.sessions.CreateSession(ctx, connect.NewRequest(&gantryv1.CreateSessionRequest{ApiKey: key}))
	switch {
	case connect.CodeOf(err) == connect.CodeUnauthenticated || connect.CodeOf(err) == connect.CodeInvalidArgument:
		u.showSignIn(w, r, http.StatusUnauthorized, "API key: this key is not valid (unknown, revoked or mistyped).")
		return
	case err != nil:
		u.fail(w, r, "sign in", err)
		return
	}
	clearCookie(w, r, signInCookie)
	setCookie(w, r, sessionCookie, res.Msg.GetToken(), res.Msg.GetExpiresAt().AsTime())
	u.log.InfoContext(r.Context(), "ui: signed in", "api_key_id", res.Msg.GetApiKey().GetId())
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) signOut(w http.ResponseWriter, r *http.Request) {
	clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}
