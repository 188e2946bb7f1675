package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/blob"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/server/api"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/server/ui"
	"github.com/gantryhq/gantry/services/server/webhook"
	"github.com/gantryhq/gantry/services/server/workerapi"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// apiDeps is what the Connect services are built from.
type apiDeps struct {
	// version is the server's version (ListWorkers flags older launchers).
	version string
	pool    *pgxpool.Pool
	store   *eventstore.Store
	aggs    *aggregate.Repository
	watcher *eventstore.Watcher
	cmds    *commands.Service
	// sessions open and verify session tokens.
	sessions *auth.Sessions
	states   *statebackend.Service
	// nc carries the run logs stream (bus.RunLogsStream), ensured here.
	nc *nats.Conn
	// objects holds saved workspaces and phase logs (the worker API).
	objects *objstore.Store
	log     *slog.Logger
	obs     *observability
	// waiter lets GetRun wait for an event a client saw (min_cursor).
	waiter *projections.Waiter
	// devSignIn is gantry dev's one-time sign-in link of the web UI; nil
	// for gantry server.
	devSignIn *ui.DevSignIn
	// streamReplicas is GANTRY_NATS_REPLICAS (0: 1).
	streamReplicas int
}

// newCommands builds the command layer the API and the worker gateway share.
func newCommands(aggs *aggregate.Repository, waiter *projections.Waiter, keys *serverKeys, states *statebackend.Service,
	bucket *blob.Bucket, publicURL, natsURL string, log *slog.Logger) (*commands.Service, error) {
	return commands.New(commands.Config{
		Aggregates: aggs, Waiter: waiter, Secrets: keys.keeper, Pools: commands.CAPools{CA: keys.ca}, State: states, StateCredentials: states,
		StateContents: states, Workspaces: executor.BucketStore{Bucket: bucket},
		OutputsKey: keys.outputs.Public(), ServerURL: publicURL, NATSURL: natsURL, Logger: log,
	})
}

// apiRoutes builds every Connect service, each behind the interceptor that
// authenticates callers and checks their role against api.Roles, and mounts
// the managed-state http backend (which authenticates runs with its own
// credentials).
func apiRoutes(d apiDeps) ([]api.Route, error) {
	cmds := d.cmds
	events, err := api.NewEventService(api.EventServiceConfig{Events: d.store, Changes: d.watcher, Logger: d.log})
	if err != nil {
		return nil, err
	}
	queries := projections.NewQueries(d.pool)
	interceptor, err := auth.NewInterceptor(d.sessions, api.Roles(), d.log)
	if err != nil {
		return nil, err
	}
	interceptors, err := d.obs.apiInterceptors(interceptor)
	if err != nil {
		return nil, err
	}
	authn := connect.WithHandlerOptions(append(api.StrictJSON(), connect.WithInterceptors(interceptors...), connect.WithCompressMinBytes(api.CompressMinBytes))...)
	runLogs, err := newRunLogs(d)
	if err != nil {
		return nil, err
	}
	workers, err := workerapi.NewHandler(workerapi.Config{Objects: d.objects, Aggregates: d.aggs, Pools: poolauth.New(d.aggs), Logger: d.log})
	if err != nil {
		return nil, err
	}
	connectRoutes := append([]api.Route{
		events.Route(authn),
		api.NewStackService(cmds, queries, identify, d.log).Route(authn),
		api.NewRunService(cmds, queries, identify, d.log).WithLogs(runLogs).WithReadWaiter(d.waiter).Route(authn),
		api.NewPoolService(cmds, queries, identify, d.log).WithServerVersion(d.version).Route(authn),
		api.NewStateService(d.states, cmds, identify, d.log).Route(authn),
		api.NewAPIKeyService(cmds, queries, identify, d.log).Route(authn),
		api.NewSessionService(d.sessions, queries, d.log).Route(authn),
		api.NewVCSService(cmds, queries, identify, d.log).Route(authn),
		api.NewScheduleService(cmds, queries, identify, d.log).Route(authn),
	}, dayTwoRoutes(d, queries, authn)...)
	// Every Connect call is authenticated from its headers before its body
	// is read (the interceptor then finds the caller verified and checks its
	// role).
	tokenFirst := auth.Middleware(d.sessions, api.Roles(), d.log)
	for i := range connectRoutes {
		connectRoutes[i].Handler = tokenFirst(connectRoutes[i].Handler)
		if connectRoutes[i].Path == "/"+gantryv1connect.StackServiceName+"/" {
			// CreateStack may carry a state to import, base64 in JSON.
			connectRoutes[i].MaxBodyBytes = d.states.MaxStateSize()*4/3 + api.DefaultMaxBodyBytes
		}
	}
	web, err := webUI(d, connectRoutes)
	if err != nil {
		return nil, err
	}
	return d.obs.grpcRoutes(append(connectRoutes,
		// The web UI calls the Connect routes above in process, as the
		// signed-in user; it serves every path no other route claims.
		api.Route{Path: "/", Handler: web},
		// Deliveries authenticate by their signature, runs with their state
		// credentials, launchers with their pool's: each is checked before a
		// body is read.
		api.Route{Path: webhook.PathPrefix, Handler: webhook.New(cmds, 0, d.log), MaxBodyBytes: webhook.MaxBodyBytes},
		api.Route{Path: statebackend.PathPrefix, Handler: d.states.Handler(), MaxBodyBytes: d.states.MaxStateSize()},
		api.Route{Path: protocol.WorkerAPIPrefix, Handler: workers, MaxBodyBytes: workerapi.MaxUploadSize},
	)), nil
}

// webUI builds the web UI on the Connect routes.
func webUI(d apiDeps, connectRoutes []api.Route) (*ui.UI, error) {
	mux := http.NewServeMux()
	for _, r := range connectRoutes {
		mux.Handle(r.Path, r.Handler)
	}
	return ui.New(ui.Config{
		API: mux, Sessions: d.sessions, Policy: api.Roles(), DevSignIn: d.devSignIn, Logger: d.log,
		Head: func(ctx context.Context) (int64, error) {
			c, err := d.store.Head(ctx)
			return c.Position, err
		},
	})
}

// newRunLogs ensures the run logs stream and returns what serves StreamRunLogs from it and the
// bucket.
func newRunLogs(d apiDeps) (*api.RunLogs, error) {
	js, err := jetstream.New(d.nc)
	if err != nil {
		return nil, fmt.Errorf("run logs: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureRunLogsStream(ctx, js, bus.DefaultRunLogsMaxAge, d.streamReplicas); err != nil {
		return nil, err
	}
	return api.NewRunLogs(api.RunLogsConfig{Aggregates: d.aggs, Objects: d.objects, JetStream: js, Changes: d.watcher})
}

// identify adapts the principal the authentication interceptor verified to
// the caller commands record.
func identify(ctx context.Context) (commands.Caller, bool) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return commands.Caller{}, false
	}
	return commands.Caller{Actor: p.Actor(), Role: p.Role}, true
}
