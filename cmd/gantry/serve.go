package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/api"
	"github.com/gantryhq/gantry/services/server/gateway"
	"github.com/gantryhq/gantry/services/server/scheduler"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/server/ui"
	"github.com/gantryhq/gantry/services/server/workerapi"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// serverConfig is what a server process needs besides its infrastructure.
type serverConfig struct {
	listen string
	// publicURL is the API's address as launchers reach it (pool tokens);
	// default http://<listen>.
	publicURL string
	// secretsURL opens the secrets keeper. Required.
	secretsURL string
	// rsaKey is GANTRY_ENCRYPTION_RSA_PRIVATE_KEY, the key of secretsURL rsakey://.
	rsaKey string
	// blobURL opens the bucket of managed state (and other objects). Required.
	blobURL string
	// maxStateSize bounds a managed state file; 0 is the state backend's
	// default.
	maxStateSize int64
	// signingKeys sign and verify session tokens. Required.
	signingKeys *auth.KeySet
	// adminCredentials, when set, is the CLI's credentials file where gantry
	// dev keeps its admin API key: created on first start, reused afterwards.
	adminCredentials string
	// adminKeyFile, when set, is where gantry server writes the first admin
	// API key if no key exists.
	adminKeyFile string
	log          *slog.Logger
	// ready is called once the API listens, with the components' lines.
	ready func(lines []component)
	// publicWorkers is how many launchers of the built-in public pool run
	// in process (gantry dev), keeping the pool's key in dataDir and giving
	// runs path as PATH.
	publicWorkers int
	dataDir, path string
	// docker, if set, runs the public pool's runs in containers.
	docker *executor.DockerConfig
	// callout authenticates pool launchers on an external NATS
	// (GANTRY_NATS_CALLOUT_*); without an issuer, none runs.
	callout calloutSettings
	// instrumentationListen is the address of the probes and /metrics
	// (instrumentation.go); "" serves neither and collects no metrics.
	instrumentationListen string
	// tracing traces the API, appends, the relay, assignments and reports;
	// nil: off.
	tracing trace.TracerProvider
	// streamReplicas is how many replicas the EVENTS and RUN_LOGS streams
	// get (GANTRY_NATS_REPLICAS); 0 is 1.
	streamReplicas int
	// version is the server's version, which `gantry pool workers` compares
	// the launchers' with; default this binary's (binaryVersion).
	version string
}

type component struct{ name, where string }

// runServer runs the server-side services on pool and b until ctx ends:
// the schema migrations, the relay (standing by while another process's is
// active), the projector, the Connect API behind authentication, and the
// managed-state http backend under statebackend.PathPrefix. Its loops run
// under one supervisor; it returns an error when one cannot start.
func runServer(ctx context.Context, pool *pgxpool.Pool, b *bus.Bus, cfg serverConfig) error {
	log := cfg.log
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		return err
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		return err
	}
	store := eventstore.New(pool, reg, eventstore.WithLogger(log), eventstore.WithTracerProvider(cfg.tracing))
	defer store.Close()
	// One aggregate repository for every component, so they share its cache.
	aggs, err := aggregate.New(store, aggregate.Config{Logger: log})
	if err != nil {
		return err
	}
	watcher := eventstore.NewWatcher(pool, log)
	keys, err := openKeys(ctx, pool, cfg.secretsURL, cfg.signingKeys, keyring.WithRSAPrivateKey(cfg.rsaKey))
	if err != nil {
		return err
	}
	defer keys.close()
	sessions, err := auth.NewSessions(keys.issuer, aggs)
	if err != nil {
		return err
	}
	bucket, err := objstore.Open(ctx, cfg.blobURL)
	if err != nil {
		return fmt.Errorf("GANTRY_BLOB_URL: %w", err)
	}
	defer bucket.Close()
	objects, err := objstore.NewStore(bucket, keys.keeper)
	if err != nil {
		return err
	}
	states, err := statebackend.New(aggs, pool, objects, statebackend.Config{MaxStateSize: cfg.maxStateSize, Logger: log})
	if err != nil {
		return err
	}

	nc, err := b.Connect("gantry-server")
	if err != nil {
		return fmt.Errorf("connect the server to NATS: %w", err)
	}
	defer nc.Close()
	resets := enforcePoolAuth(b, nc, aggs, log)
	callout, err := authCallout(cfg.callout, b, nc, aggs, log)
	if err != nil {
		return err
	}
	relay, err := eventstore.NewRelay(pool, nc, eventstore.RelayConfig{Logger: log, TracerProvider: cfg.tracing, Replicas: cfg.streamReplicas})
	if err != nil {
		return err
	}
	// The projector's consumer needs the stream; the relay makes it too,
	// once it is the active one.
	if err := relay.EnsureStream(ctx); err != nil {
		log.Warn("could not create the events stream yet; the relay will", "err", err)
	}
	proj, err := newProjector(pool, store, nc, log)
	if err != nil {
		return err
	}

	publicURL := cfg.publicURL
	if publicURL == "" {
		publicURL = "http://" + cfg.listen
	}
	cmds, err := newCommands(aggs, proj.waiter, keys, states, bucket, publicURL, b.URL(), log)
	if err != nil {
		return err
	}
	obs, err := newObservability(cfg, pool, nc, bucket, proj.names, log)
	if err != nil {
		return err
	}
	defer obs.close()
	sched, err := scheduler.New(scheduler.Config{Pool: pool, Aggregates: aggs, Commands: cmds, NATS: nc, Logger: log, Metrics: obs.metrics, TracerProvider: obs.tracer})
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Config{Pool: pool, Commands: cmds, NATS: nc, Logger: log, Metrics: obs.metrics, TracerProvider: obs.tracer})
	if err != nil {
		return err
	}
	drn, err := newDrain(pool, b, cmds, publicURL, log)
	if err != nil {
		return err
	}
	schedules, err := newSchedules(pool, cmds, log)
	if err != nil {
		return err
	}
	var devSignIn *ui.DevSignIn
	if cfg.adminCredentials != "" {
		// gantry dev: the UI's one-time link signs in with the admin key
		// kept in the CLI's credentials file.
		devSignIn = ui.NewDevSignIn(func(context.Context) (string, error) {
			c, err := auth.LoadCredentials(cfg.adminCredentials)
			return c.Token, err
		})
	}
	routes, err := apiRoutes(apiDeps{version: cmp.Or(cfg.version, binaryVersion()), pool: pool, store: store, aggs: aggs, watcher: watcher, cmds: cmds, sessions: sessions, states: states, nc: nc, objects: objects, log: log, obs: obs, waiter: proj.waiter, devSignIn: devSignIn, streamReplicas: cfg.streamReplicas})
	if err != nil {
		return err
	}
	srv, err := api.New(api.Config{Listen: cfg.listen, Logger: log}, routes...)
	if err != nil {
		return err
	}
	components := []supervisor.Component{
		{Name: "event-watcher", Run: watcher.Run},
		{Name: "relay", Run: relay.Run},
		{Name: "projector", Run: proj.p.Run},
		{Name: "projection-waiter", Run: proj.waiter.Run},
		{Name: "scheduler", Run: sched.Run},
		{Name: "gateway", Run: gw.Run},
		{Name: "drain", Run: drn.Run},
		schedules,
		{Name: "workspace-cleanup", Run: func(ctx context.Context) error { return workerapi.CleanUpWorkspaces(ctx, nc, bucket, log) }},
		// A server that stopped serving has closed its listener: no restart helps.
		{Name: "api", Run: func(ctx context.Context) error { return supervisor.Permanent(srv.Serve(ctx)) }},
	}
	components = append(components, obs.components()...)
	if resets != nil {
		components = append(components, *resets)
	}
	if callout != nil {
		components = append(components, *callout)
	}

	// The services outlive ctx until the in-process launchers have exited:
	// their last reports and uploads need the gateway and the API.
	svc, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	supervised := make(chan error, 1)
	go func() { supervised <- supervisor.Run(svc, supervisor.Config{Logger: log}, components...) }()
	// Making a key waits for the read models: the projector runs by now.
	boot := bootstrap{keys: cmds, sessions: sessions, queries: projections.NewQueries(pool), waiter: proj.waiter, store: store, log: log}
	var credentialsLine component
	if cfg.adminCredentials != "" {
		credentialsLine, err = boot.devAdmin(ctx, cfg.adminCredentials, publicURL)
	} else {
		credentialsLine, err = boot.firstAdminKey(ctx, cfg.adminKeyFile)
	}
	if err != nil {
		stopServices()
		<-supervised
		return err
	}
	var workers *publicWorkers
	if cfg.publicWorkers > 0 {
		if workers, err = startPublicWorkers(ctx, cmds, cfg.dataDir, cfg.path, cfg.publicWorkers, cfg.docker, cfg.tracing, log); err != nil {
			stopServices()
			<-supervised
			return err
		}
	}
	if cfg.ready != nil {
		lines := []component{
			{"relay", "publishing committed events to JetStream stream " + eventstore.EventsStream},
			{"projector", "read models " + strings.Join(proj.names, ", ")},
			{"scheduler", "assigning READY runs to idle workers"},
			{"gateway", "taking worker registrations, heartbeats and run reports on " + protocol.AllReports},
			{"drain", "webhook deliveries on /webhooks/, scheduled runs, commit statuses"},
			{"api", "http://" + srv.Addr().String()},
			uiLine("http://"+srv.Addr().String(), devSignIn),
		}
		if workers != nil {
			lines = append(lines, component{"workers", fmt.Sprintf("%d launchers of the public pool %s", cfg.publicWorkers, ids.PublicPool)})
		}
		if credentialsLine.name != "" {
			lines = append(lines, credentialsLine)
		}
		cfg.ready(append(lines, obs.started()...))
	} else {
		obs.started()
	}
	select {
	case <-ctx.Done():
		if workers != nil {
			workers.Stop()
		}
		stopServices()
		return <-supervised
	case err := <-supervised:
		// A component could not start: the server must not go on without it.
		if workers != nil {
			workers.Stop()
		}
		return err
	}
}

// uiLine is the web UI's start-up line; under gantry dev it carries the
// one-time sign-in link.
func uiLine(base string, dev *ui.DevSignIn) component {
	if dev == nil {
		return component{"ui", base + "/ (sign in with an API key)"}
	}
	return component{"ui", fmt.Sprintf("%s/ (one-time sign-in link, valid %s: %s)", base, ui.DevSignInTTL, dev.Link(base))}
}

// newLogger returns the JSON logger of server-side commands, at the level
// GANTRY_LOG_LEVEL names (debug, info, warn, error; default info).
func newLogger(getenv func(string) string) (*slog.Logger, error) {
	v, err := settings.LogLevel.String(getenv)
	if err != nil {
		return nil, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(v))); err != nil {
		return nil, fmt.Errorf("%s=%q: %w", settings.LogLevel.Name, v, err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
