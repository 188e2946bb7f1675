// Package ui serves Gantry's web UI: server-rendered pages of stacks, runs
// (with live logs), worker pools and the audit trail, mounted on the API
// port at "/". Every page and every action goes through the Connect API as
// the signed-in user: the UI's clients call the server's own Connect
// handlers in process with the user's session token, so a page shows
// exactly what the API lets that user see and an action is refused exactly
// as over the API.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// internalURL is the base URL of the in-process Connect clients; no
// request leaves the process.
const internalURL = "http://gantry.internal"

// Config configures the UI.
type Config struct {
	// API serves the Connect procedures (with their authentication); the
	// UI's clients call it in process. Required.
	API http.Handler
	// Sessions verifies the session cookie to learn the user's name and
	// role, which decide the buttons shown. Required.
	Sessions auth.Verifier
	// Policy is the API's table of roles (api.Roles()). Required.
	Policy auth.Policy
	// Head returns the position of the last committed event: the audit
	// trail starts its "latest" view and its live follow there. Required.
	Head func(ctx context.Context) (int64, error)
	// DevSignIn, when set (gantry dev only), serves its one-time sign-in link.
	DevSignIn *DevSignIn
	// Logger receives the UI's logs. Default: discard.
	Logger *slog.Logger
}

// UI is the web UI's http.Handler.
type UI struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	c     clients
}

// clients are the Connect clients the UI acts through; each call carries
// the session token in its context (withToken).
type clients struct {
	sessions gantryv1connect.SessionServiceClient
	stacks   gantryv1connect.StackServiceClient
	env      gantryv1connect.StackEnvServiceClient
	runs     gantryv1connect.RunServiceClient
	pools    gantryv1connect.WorkerPoolServiceClient
	states   gantryv1connect.StateServiceClient
	events   gantryv1connect.EventServiceClient
}

// New returns the UI.
func New(cfg Config) (*UI, error) {
	if cfg.API == nil || cfg.Sessions == nil || cfg.Policy == nil || cfg.Head == nil {
		return nil, errors.New("ui: the API handler, sessions, role policy and event head are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: handlerTransport{h: cfg.API}}
	// In process, compressing a response only costs CPU.
	opts := connect.WithClientOptions(connect.WithInterceptors(tokenInterceptor{}), connect.WithAcceptCompression("gzip", nil, nil))
	u := &UI{cfg: cfg, log: cfg.Logger, pages: pages, c: clients{
		sessions: gantryv1connect.NewSessionServiceClient(hc, internalURL, opts),
		stacks:   gantryv1connect.NewStackServiceClient(hc, internalURL, opts),
		env:      gantryv1connect.NewStackEnvServiceClient(hc, internalURL, opts),
		runs:     gantryv1connect.NewRunServiceClient(hc, internalURL, opts),
		pools:    gantryv1connect.NewWorkerPoolServiceClient(hc, internalURL, opts),
		states:   gantryv1connect.NewStateServiceClient(hc, internalURL, opts),
		events:   gantryv1connect.NewEventServiceClient(hc, internalURL, opts),
	}}
	u.routes()
	return u, nil
}

func (u *UI) routes() {
	m := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/stacks", http.StatusSeeOther) })
	m.HandleFunc("GET /sign-in", u.signInPage)
	m.HandleFunc("POST /sign-in", u.signIn)
	m.HandleFunc("POST /sign-out", u.signOut)
	if u.cfg.DevSignIn != nil {
		m.HandleFunc("GET "+DevSignInPath, u.devSignIn)
	}
	m.HandleFunc("GET /stacks", u.signedIn(u.stacksPage))
	m.HandleFunc("GET /stacks/{stack}", u.signedIn(u.stackPage))
	m.HandleFunc("POST /stacks/{stack}/runs", u.signedIn(u.triggerRun))
	m.HandleFunc("POST /stacks/{stack}/{action}", u.signedIn(u.stackLock))
	m.HandleFunc("GET /stacks/{stack}/state/{version}", u.signedIn(u.downloadState))
	m.HandleFunc("POST /stacks/{stack}/state/{version}/rollback", u.signedIn(u.rollbackState))
	m.HandleFunc("GET /runs/{run}", u.signedIn(u.runPage))
	m.HandleFunc("GET /runs/{run}/logs", u.signedIn(u.runLogsEvents))
	m.HandleFunc("POST /runs/{run}/{action}", u.signedIn(u.runAction))
	m.HandleFunc("GET /pools", u.signedIn(u.poolsPage))
	m.HandleFunc("GET /pools/{pool}", u.signedIn(u.poolPage))
	m.HandleFunc("POST /pools/{pool}/cycle", u.signedIn(u.cyclePool))
	m.HandleFunc("POST /pools/{pool}/workers/{worker}/{action}", u.signedIn(u.workerAction))
	m.HandleFunc("GET /events", u.signedIn(u.eventsPage))
	m.HandleFunc("GET /events/live", u.signedIn(u.liveEvents))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Data: errorData{Message: "There is no page at " + r.URL.Path + "."}})
	})
	u.mux = m
}

// contentSecurityPolicy forbids inline script and framing: the UI's only
// script is /assets/app.js.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP sets the security headers of every response, refuses
// state-changing requests without a valid CSRF token, and serves the page.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if procedureLike(r.URL.Path) {
		// An RPC to a service this server does not have: answered as
		// before the UI existed, so clients see Unimplemented.
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := u.checkPost(r); err != nil {
			u.log.WarnContext(r.Context(), "ui: state-changing request refused", "path", r.URL.Path, "reason", err.Error())
			u.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Data: errorData{Message: "This form could not be accepted (" + err.Error() + "). Reload the page and try again."}})
			return
		}
	}
	u.mux.ServeHTTP(w, r)
}

// procedureLike reports whether path names an RPC ("/pkg.Service/Method"):
// its first segment has a dot, which no page of the UI has.
func procedureLike(path string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return strings.Contains(first, ".")
}

// page is what every template receives.
type page struct {
	Title string
	// User is the signed-in user; nil on the sign-in page.
	User *auth.Principal
	// CSRF is the token every form of the page carries.
	CSRF string
	// Notice says what the last action did.
	Notice string
	// can tells whether the user's role may call a procedure.
	can  func(procedure string) bool
	Data any
}

// Can reports whether the user may call the procedure (the short name, as
// "RunService/ConfirmRun"): the pages show only the buttons the user may use.
func (p page) Can(procedure string) bool {
	return p.can != nil && p.can("/gantry.v1."+procedure)
}

type errorData struct{ Message string }

func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := u.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	if s, ok := sessionFrom(r.Context()); ok && p.User == nil {
		p.User, p.CSRF, p.can = &s.principal, s.csrf, s.can
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		u.log.ErrorContext(r.Context(), "ui: render a page", "page", name, "err", err.Error())
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// action is one thing a form may ask of an object: its name in the path
// ({action}), what it says once done (?done=…), and the API call.
type action struct {
	name, done string
	call       func(ctx context.Context) error
}

// rpc is the call of an action: the API method m with req, its answer
// dropped (the redirect reads the object again).
func rpc[Req, Res any](m func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), req *Req) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := m(ctx, connect.NewRequest(req))
		return err
	}
}

// act runs the action the request's {action} names among actions, done to
// the object of kind (a run, a stack, a worker), and sends the browser to
// back with the action's notice; an unknown action is a 404 naming the
// known ones, a refused call the API's answer (fail).
func (u *UI) act(w http.ResponseWriter, r *http.Request, kind, back string, actions ...action) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	name := r.PathValue("action")
	i := slices.IndexFunc(actions, func(a action) bool { return a.name == name })
	if i < 0 {
		names := make([]string, len(actions))
		for j, a := range actions {
			names[j] = a.name
		}
		u.render(w, r, http.StatusNotFound, "error", page{Title: "Not found",
			Data: errorData{Message: fmt.Sprintf("action: %q is not an action of a %s (%s).", name, kind, strings.Join(names, ", "))}})
		return
	}
	if err := actions[i].call(ctx); err != nil {
		u.fail(w, r, name+" the "+kind, err)
		return
	}
	http.Redirect(w, r, back+"?done="+actions[i].done, http.StatusSeeOther)
}

// fail renders the API's refusal of a call: an expired session goes back to
// the sign-in page, the others say what the API said with the matching
// HTTP status.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	code := connect.CodeOf(err)
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	status := http.StatusBadGateway
	switch code {
	case connect.CodeUnauthenticated:
		clearCookie(w, r, sessionCookie)
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	case connect.CodePermissionDenied:
		status = http.StatusForbidden
	case connect.CodeNotFound:
		status = http.StatusNotFound
	case connect.CodeInvalidArgument, connect.CodeOutOfRange:
		status = http.StatusBadRequest
	case connect.CodeFailedPrecondition, connect.CodeAlreadyExists, connect.CodeAborted:
		status = http.StatusConflict
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		status = http.StatusServiceUnavailable
	default:
		u.log.ErrorContext(r.Context(), "ui: API call failed", "what", what, "err", err.Error())
	}
	u.render(w, r, status, "error", page{Title: "Could not " + what, Data: errorData{Message: fmt.Sprintf("Could not %s: %s (%s).", what, msg, code)}})
}

// callTimeout bounds the API calls of one page.
const callTimeout = 20 * time.Second
