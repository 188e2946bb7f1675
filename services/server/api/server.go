// Package api serves Gantry's Connect RPC API over HTTP/1.1 and cleartext
// HTTP/2.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultListen is the address the server listens on unless configured.
const DefaultListen = "127.0.0.1:1983"

// shutdownTimeout bounds a graceful shutdown; connections still open after
// it are closed.
const shutdownTimeout = 5 * time.Second

// DefaultMaxBodyBytes bounds the body of a request to a route that sets no
// limit of its own: every Connect call (4 MiB is far above any message of
// the API).
const DefaultMaxBodyBytes = 4 << 20

// Route is one handler and the path prefix it is mounted on, as Connect's
// generated New…Handler functions return them.
type Route struct {
	Path    string
	Handler http.Handler
	// MaxBodyBytes bounds a request's body: one announcing more is answered
	// 413 before the handler runs, and one that sends more without saying
	// so is cut off there. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to listen on; port 0 picks a free port.
	// Default DefaultListen.
	Listen string
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func validateRoutes(routes []Route) error {
	var errs []error
	seen := map[string]bool{"/healthz": true}
	for i, r := range routes {
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			errs = append(errs, fmt.Errorf("route %d: path %q must start with '/'", i, r.Path))
		case r.Handler == nil:
			errs = append(errs, fmt.Errorf("route %d (%s): handler is nil", i, r.Path))
		case seen[r.Path]:
			errs = append(errs, fmt.Errorf("route %d: path %s is mounted twice", i, r.Path))
		}
		seen[r.Path] = true
	}
	return errors.Join(errs...)
}

// Server serves Connect handlers and /healthz on one listener, speaking
// HTTP/1.1 and cleartext HTTP/2 (so gRPC clients work without TLS).
type Server struct {
	log      *slog.Logger
	ln       net.Listener
	http     *http.Server
	stopping chan struct{}
	stop     sync.Once
}

// New binds cfg.Listen and mounts routes. Call Serve to start answering, or
// Close to release the listener without serving.
func New(cfg Config, routes ...Route) (*Server, error) {
	cfg.defaults()
	if err := validateRoutes(routes); err != nil {
		return nil, fmt.Errorf("api server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	for _, r := range routes {
		limit := r.MaxBodyBytes
		if limit <= 0 {
			limit = DefaultMaxBodyBytes
		}
		mux.Handle(r.Path, limitBody(limit, r.Handler))
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("api server: listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{log: cfg.Logger, ln: ln, stopping: make(chan struct{})}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.http = &http.Server{
		Handler:           mux,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		// Request contexts outlive Serve's context so that requests in
		// flight can finish during a graceful shutdown; long-lived streams
		// learn of the shutdown through serverStopping instead.
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), stoppingKey{}, (<-chan struct{})(s.stopping))
		},
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests until ctx ends, then shuts down gracefully: it
// stops accepting connections, ends following streams, and waits up to 5 s
// for requests in flight before closing what is left. It returns nil after
// a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("api server listening", "addr", s.Addr().String())
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("api server: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("api server shutting down")
	s.stop.Do(func() { close(s.stopping) })
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("api server: graceful shutdown incomplete, closing connections", "err", err)
		if err := s.http.Close(); err != nil {
			errs = append(errs, fmt.Errorf("api server: close: %w", err))
		}
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("api server: serve: %w", err))
	}
	return errors.Join(errs...)
}

// Close releases the listener of a server that is not serving.
func (s *Server) Close() error {
	if err := s.ln.Close(); err != nil {
		return fmt.Errorf("api server: close listener: %w", err)
	}
	return nil
}

// limitBody refuses a request whose body is larger than limit before next
// sees it: 413 with a Connect error (resource_exhausted) that names the
// limit, at once when Content-Length says so, else when the body reaches
// it. Nothing of the body is read here: a handler that authenticates from
// the headers (every one of Gantry's) refuses a caller without credentials
// before reading a byte of it.
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// tooLarge answers a body over limit. The connection is closed after the
// answer rather than the rest of the body read.
func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = fmt.Fprintf(w, `{"code":"resource_exhausted","message":"the request body is larger than the limit of %d bytes"}`+"\n", limit)
}

type stoppingKey struct{}

// serverStopping returns a channel closed when the server serving ctx's
// request starts shutting down, or nil outside a Server (never closed).
func serverStopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}
