package launcher

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// stateProxy serves one run's Terraform state to the run's containers, at
// their network's gateway on this host, by forwarding to the server: the
// containers cannot count on reaching the server's own address (under
// gantry dev it is 127.0.0.1), while the launcher always can. It forwards
// exactly the stack's state path, nothing else; the requests carry the
// run's state credentials, which only the run's phases have.
type stateProxy struct {
	URL string // http://gateway:port
	srv *http.Server
}

// startStateProxy listens on host (an address of this host) at a free
// port and forwards the state of stackID to serverURL.
func startStateProxy(host, serverURL, stackID string, log *slog.Logger) (*stateProxy, error) {
	target, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("the server's URL %q: %w", serverURL, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen on the containers' gateway %s: %w", host, err)
	}
	statePath := tfbackend.StatePath(stackID)
	forward := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("state proxy: the server did not answer", "method", r.Method, "err", err)
			http.Error(w, "the worker could not reach the Gantry server", http.StatusBadGateway)
		},
	}
	p := &stateProxy{URL: "http://" + ln.Addr().String(), srv: &http.Server{
		ReadHeaderTimeout: 30 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.EscapedPath() != statePath {
				http.NotFound(w, r)
				return
			}
			forward.ServeHTTP(w, r)
		}),
	}}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("state proxy stopped", "err", err)
		}
	}()
	return p, nil
}

// Close stops serving; the run has ended.
func (p *stateProxy) Close() { _ = p.srv.Close() }
