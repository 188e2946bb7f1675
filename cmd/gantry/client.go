package main

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// clientOptions returns the Connect options every API client uses.
func (g *globalOptions) clientOptions() []connect.ClientOption {
	if g.token == "" {
		return nil
	}
	return []connect.ClientOption{connect.WithInterceptors(bearerToken(g.token))}
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

// newClient makes a Connect client of the server the options name.
func newClient[C any](g *globalOptions, mk func(connect.HTTPClient, string, ...connect.ClientOption) C) (C, error) {
	base, err := g.baseURL()
	if err != nil {
		var zero C
		return zero, err
	}
	return mk(httpClient, base, g.clientOptions()...), nil
}

// bearerToken adds "Authorization: Bearer <token>" to every request.
type bearerToken string

func (t bearerToken) header() string { return "Bearer " + string(t) }

func (t bearerToken) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", t.header())
		return next(ctx, req)
	}
}

func (t bearerToken) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", t.header())
		return conn
	}
}

func (t bearerToken) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
