package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// clientOptions returns the Connect options every API client of the server
// at base uses: the bearer token, one per process.
func (g *globalOptions) clientOptions(base string) []connect.ClientOption {
	if g.token == "" {
		return nil
	}
	if g.bearer == nil {
		g.bearer = newBearer(g.token, base)
	}
	return []connect.ClientOption{connect.WithInterceptors(g.bearer)}
}

// httpClient has no overall timeout: streams such as events --follow stay
// open until the user ends them.
var httpClient = &http.Client{}

func (g *globalOptions) eventClient() (gantryv1connect.EventServiceClient, error) {
	return newClient(g, gantryv1connect.NewEventServiceClient)
}

func (g *globalOptions) stackClient() (gantryv1connect.StackServiceClient, error) {
	return newClient(g, gantryv1connect.NewStackServiceClient)
}

func (g *globalOptions) runClient() (gantryv1connect.RunServiceClient, error) {
	return newClient(g, gantryv1connect.NewRunServiceClient)
}

func (g *globalOptions) poolClient() (gantryv1connect.WorkerPoolServiceClient, error) {
	return newClient(g, gantryv1connect.NewWorkerPoolServiceClient)
}

func (g *globalOptions) vcsClient() (gantryv1connect.VCSServiceClient, error) {
	return newClient(g, gantryv1connect.NewVCSServiceClient)
}

func (g *globalOptions) scheduleClient() (gantryv1connect.ScheduleServiceClient, error) {
	return newClient(g, gantryv1connect.NewScheduleServiceClient)
}

func (g *globalOptions) apiKeyClient() (gantryv1connect.ApiKeyServiceClient, error) {
	return newClient(g, gantryv1connect.NewApiKeyServiceClient)
}

// newClient makes a Connect client of the server the options name.
func newClient[C any](g *globalOptions, mk func(connect.HTTPClient, string, ...connect.ClientOption) C) (C, error) {
	base, err := g.baseURL()
	if err != nil {
		var zero C
		return zero, err
	}
	return mk(httpClient, base, g.clientOptions(base)...), nil
}

// sessionRenewal is how long before its expiry a session token is replaced.
const sessionRenewal = time.Minute

// bearer adds "Authorization: Bearer <session token>" to every request.
// Given an API key, it opens a session with it on first use (and again
// shortly before the session expires); anything else is taken for a
// session token and sent as it is.
type bearer struct {
	credential string
	sessions   gantryv1connect.SessionServiceClient

	mu      sync.Mutex
	token   string
	expires time.Time
}

func newBearer(credential, base string) *bearer {
	return &bearer{credential: credential, sessions: gantryv1connect.NewSessionServiceClient(httpClient, base)}
}

// header returns the Authorization header value, opening a session first
// when needed.
func (b *bearer) header(ctx context.Context) (string, error) {
	if !apikey.LooksLikeKey(b.credential) {
		return "Bearer " + b.credential, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.token == "" || time.Until(b.expires) < sessionRenewal {
		resp, err := b.sessions.CreateSession(ctx, connect.NewRequest(&gantryv1.CreateSessionRequest{ApiKey: b.credential}))
		if err != nil {
			return "", fmt.Errorf("sign in with the API key: %w", err)
		}
		b.token, b.expires = resp.Msg.GetToken(), resp.Msg.GetExpiresAt().AsTime()
	}
	return "Bearer " + b.token, nil
}

func (b *bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		h, err := b.header(ctx)
		if err != nil {
			return nil, err
		}
		req.Header().Set("Authorization", h)
		return next(ctx, req)
	}
}

func (b *bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		h, err := b.header(ctx)
		if err != nil {
			return failedConn{StreamingClientConn: conn, err: err}
		}
		conn.RequestHeader().Set("Authorization", h)
		return conn
	}
}

func (b *bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// failedConn is a stream that could not get its token: it fails on its
// first use, and never starts its request (closing the real stream would
// send one without the token).
type failedConn struct {
	connect.StreamingClientConn
	err error
}

func (c failedConn) Send(any) error       { return c.err }
func (c failedConn) Receive(any) error    { return c.err }
func (c failedConn) CloseRequest() error  { return nil }
func (c failedConn) CloseResponse() error { return nil }
