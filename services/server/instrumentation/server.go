package instrumentation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gantryhq/gantry/services/platform/metrics"
)

// Default listen addresses: `gantry server`'s, as the reference product's
// instrumentation port, and `gantry dev`'s, on loopback beside its API.
const (
	DefaultListen    = ":8080"
	DefaultDevListen = "127.0.0.1:1985"
)

// Config configures a Server.
type Config struct {
	// Listen is the TCP address; port 0 picks a free one. Required.
	Listen string
	// Metrics is served on /metrics (404 when nil).
	Metrics *metrics.Registry
	// Readiness is what /readiness checks. Required.
	Readiness *Readiness
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Server serves the probes and /metrics.
type Server struct {
	ln        net.Listener
	http      *http.Server
	log       *slog.Logger
	readiness *Readiness
	started   atomic.Bool
}

// New binds cfg.Listen. Serve answers; until Started is called, /startup
// answers 503.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" || cfg.Readiness == nil {
		return nil, errors.New("instrumentation: Listen and Readiness are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("instrumentation: listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{ln: ln, log: log.With("component", "instrumentation"), readiness: cfg.Readiness}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /startup", s.startup)
	mux.HandleFunc("GET /readiness", s.ready)
	mux.HandleFunc("GET /liveness", func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok\n") })
	mux.Handle("GET /metrics", cfg.Metrics.Handler(s.log))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Started makes /startup answer 200: every component of the process runs.
func (s *Server) Started() { s.started.Store(true) }

// Serve answers until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("instrumentation: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		_ = s.http.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("instrumentation: serve: %w", err)
	}
	return nil
}

// Close releases the listener of a server that is not serving.
func (s *Server) Close() error { return s.ln.Close() }

func (s *Server) startup(w http.ResponseWriter, _ *http.Request) {
	if !s.started.Load() {
		text(w, http.StatusServiceUnavailable, "starting\n")
		return
	}
	text(w, http.StatusOK, "started\n")
}

// ready answers 200 when every check passed, 503 otherwise; the body has
// one line per check.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	results := s.readiness.Check(r.Context())
	code, body := http.StatusOK, ""
	for _, res := range results {
		if res.Err != nil {
			code = http.StatusServiceUnavailable
			body += res.Name + ": " + res.Err.Error() + "\n"
			s.log.WarnContext(r.Context(), "not ready", "check", res.Name, "err", res.Err)
			continue
		}
		body += res.Name + ": ok\n"
	}
	text(w, code, body)
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
