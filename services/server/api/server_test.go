package api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// runServer starts a Server on a free port; the returned stop function ends
// Serve and returns its error. Cleanup stops it if the test did not.
func runServer(t *testing.T, routes ...Route) (srv *Server, stop func() error) {
	t.Helper()
	srv, err := New(Config{Listen: "127.0.0.1:0"}, routes...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-served
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return srv, stop
}

// h2cClient speaks only cleartext HTTP/2, as gRPC clients without TLS do.
func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func http1Client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestServerHealthz(t *testing.T) {
	srv, _ := runServer(t)
	url := "http://" + srv.Addr().String() + "/healthz"
	for _, c := range []struct {
		name  string
		http  *http.Client
		proto int
	}{{"http1", http1Client(t), 1}, {"h2c", h2cClient(t), 2}} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := c.http.Get(url)
			if err != nil {
				t.Fatalf("GET /healthz: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != "ok" {
				t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", resp.StatusCode, body)
			}
			if resp.ProtoMajor != c.proto {
				t.Errorf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, c.proto)
			}
		})
	}
}

func TestServerServesGRPCOverH2C(t *testing.T) {
	mem := newMemEvents(event(1, 10, "run", "run_a", "RunQueued"), event(2, 11, "run", "run_a", "RunStarted"))
	svc, err := NewEventService(EventServiceConfig{Events: mem})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := runServer(t, svc.Route())
	client := gantryv1connect.NewEventServiceClient(h2cClient(t), "http://"+srv.Addr().String(), connect.WithGRPC())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	got := receiveAll(t, openStream(t, ctx, client, &gantryv1.StreamRequest{}))
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("positions %v over gRPC, want [1 2]", got)
	}
}

func TestServerShutdownEndsFollowers(t *testing.T) {
	mem := newMemEvents(event(1, 10, "run", "run_a", "RunQueued"))
	svc, err := NewEventService(EventServiceConfig{Events: mem, Changes: mem, PollInterval: testTimeout * 10})
	if err != nil {
		t.Fatal(err)
	}
	srv, stop := runServer(t, svc.Route())
	client := gantryv1connect.NewEventServiceClient(http1Client(t), "http://"+srv.Addr().String())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	stream := openStream(t, ctx, client, &gantryv1.StreamRequest{Follow: true})
	receive(t, stream, 1)
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after shutdown", err)
	}
	if stream.Receive() {
		t.Fatalf("received position %d during shutdown", stream.Msg().GetEvent().GetPosition())
	}
	// Unavailable with the shutdown message (not a dropped connection) shows
	// the follower ended gracefully and the client may reconnect.
	err = stream.Err()
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnavailable || !strings.Contains(cerr.Message(), "shutting down") {
		t.Errorf("follower ended with %v, want unavailable: server is shutting down", err)
	}
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func TestNewRejectsBadRoutes(t *testing.T) {
	h := http.NotFoundHandler()
	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"relative path", []Route{{Path: "gantry.v1.X/", Handler: h}}, "must start with '/'"},
		{"nil handler", []Route{{Path: "/gantry.v1.X/"}}, "handler is nil"},
		{"duplicate", []Route{{Path: "/a/", Handler: h}, {Path: "/a/", Handler: h}}, "mounted twice"},
		{"healthz", []Route{{Path: "/healthz", Handler: h}}, "mounted twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Config{Listen: "127.0.0.1:0"}, tt.routes...)
			if err == nil {
				_ = srv.Close()
				t.Fatal("New accepted the routes")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestNewReportsListenError(t *testing.T) {
	srv, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, err = New(Config{Listen: srv.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), srv.Addr().String()) {
		t.Errorf("New on a used address = %v, want a listen error naming it", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.defaults()
	if c.Listen != "127.0.0.1:1983" || c.Logger == nil {
		t.Errorf("defaults gave %+v, want listen 127.0.0.1:1983 and a logger", c)
	}
}
