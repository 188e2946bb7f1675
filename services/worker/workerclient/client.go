// Package workerclient is a launcher's client of the server's worker HTTP
// API (protocol.WorkerAPIPrefix): it stores and reads the sealed workspaces
// of UNCONFIRMED runs and stores each phase's full log, authenticated with
// the pool's id and secret.
package workerclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// ErrNotFound is returned by Client.Open when the run has no saved workspace.
var ErrNotFound = errors.New("not found")

// maxErrorBody bounds how much of an error answer is quoted in the error.
const maxErrorBody = 4 << 10

// Client is a launcher's side of the worker API: an executor.WorkspaceStore and a phase log
// store on the server, authenticated with the pool's id and secret. The launcher's Uploads
// interface is what it satisfies.
type Client struct {
	base   string
	pool   string
	secret string
	hc     *http.Client
}

// defaultTransport is shared by the clients made without an http.Client, so that their idle
// connections are pooled together. Its timeouts bound connecting and waiting for an answer's
// headers, never a body: workspaces can take long to send.
var defaultTransport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	ForceAttemptHTTP2:     true,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: time.Minute,
	ExpectContinueTimeout: time.Second,
	IdleConnTimeout:       90 * time.Second,
	MaxIdleConns:          10,
}

// New returns a client of the server at serverURL (the URL of the pool token) for pool
// poolID. hc nil means a client whose timeouts bound connecting and waiting for an answer's
// headers, never a body: workspaces can take long to send.
func New(serverURL, poolID, poolSecret string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: defaultTransport}
	}
	return &Client{base: strings.TrimRight(serverURL, "/") + protocol.WorkerAPIPrefix, pool: poolID, secret: poolSecret, hc: hc}
}

// CloseIdleConnections closes the client's idle connections (those of the shared default
// transport when it was made without an http.Client), e.g. when a launcher exits.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

func (c *Client) newRequest(ctx context.Context, method, target string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.pool, c.secret)
	return req, nil
}

// Create implements executor.WorkspaceStore: what is written is streamed to the server as it
// comes. Close returns the upload's result; if ctx is canceled before, the upload is aborted
// and the server stores nothing.
func (c *Client) Create(ctx context.Context, runID string) (io.WriteCloser, error) {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	req, err := c.newRequest(ctx, http.MethodPut, c.base+protocol.WorkspacePath(url.PathEscape(runID)), pr)
	if err != nil {
		return nil, fmt.Errorf("upload the workspace of %s: %w", runID, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	u := &upload{ctx: ctx, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		u.err = c.do(req, "upload the workspace of "+runID)
		// Writes after the answer (an early refusal) fail with its reason.
		if u.err != nil {
			pr.CloseWithError(u.err)
		} else {
			pr.CloseWithError(errors.New("upload already answered"))
		}
	}()
	return u, nil
}

// upload is the writer of a workspace upload in progress.
type upload struct {
	ctx  context.Context
	pw   *io.PipeWriter
	done chan struct{}
	err  error
}

func (u *upload) Write(p []byte) (int, error) { return u.pw.Write(p) }

// Close ends the body and waits for the server's answer. A canceled context fails the body
// instead of ending it, so the server never sees a complete upload.
func (u *upload) Close() error {
	if err := u.ctx.Err(); err != nil {
		u.pw.CloseWithError(err)
	} else {
		_ = u.pw.Close()
	}
	<-u.done
	if u.err == nil && u.ctx.Err() != nil {
		return u.ctx.Err()
	}
	return u.err
}

// Open implements executor.WorkspaceStore. A run without a saved workspace is ErrNotFound.
func (c *Client) Open(ctx context.Context, runID string) (io.ReadCloser, error) {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return nil, err
	}
	what := "read the saved workspace of " + runID
	req, err := c.newRequest(ctx, http.MethodGet, c.base+protocol.WorkspacePath(url.PathEscape(runID)), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", what, answerError(resp))
	}
	return resp.Body, nil
}

// StorePhaseLog stores the full log of one phase of a run on the server.
func (c *Client) StorePhaseLog(ctx context.Context, runID string, phase run.Phase, log []byte) error {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return err
	}
	if !phase.Valid() {
		return fmt.Errorf("store a phase log: unknown phase %q", phase)
	}
	req, err := c.newRequest(ctx, http.MethodPut, c.base+protocol.PhaseLogPath(url.PathEscape(runID), phase), bytes.NewReader(log))
	if err != nil {
		return fmt.Errorf("store the %s log of %s: %w", phase, runID, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	return c.do(req, fmt.Sprintf("store the %s log of %s", phase, runID))
}

// do sends a request expecting a 2xx answer without a body worth reading.
func (c *Client) do(req *http.Request, what string) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %w", what, answerError(resp))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// StatusError is a non-2xx answer of the server, with its message.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Is makes a 404 match ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Code == http.StatusNotFound
}

func answerError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = "(no message)"
	}
	return &StatusError{Code: resp.StatusCode, Message: msg}
}
