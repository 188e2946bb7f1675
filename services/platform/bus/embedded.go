package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Start waits for the embedded server when ctx has no sooner deadline.
const readyTimeout = 10 * time.Second

// startEmbedded runs nats-server in this process with JetStream on file storage.
func startEmbedded(ctx context.Context, cfg Config) (*Bus, error) {
	host, port, err := listenAddress(cfg.Listen)
	if err != nil {
		return nil, err
	}
	storeDir, tempStore := cfg.StoreDir, false
	if storeDir == "" {
		if storeDir, err = os.MkdirTemp("", "gantry-jetstream-"); err != nil {
			return nil, fmt.Errorf("create temporary JetStream store: %w", err)
		}
		tempStore = true
	} else if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("create JetStream store %s: %w", storeDir, err)
	}
	removeTemp := func() {
		if tempStore {
			_ = os.RemoveAll(storeDir)
		}
	}

	password, err := servicePassword(cfg.ServicePassword, storeDir)
	if err != nil {
		removeTemp()
		return nil, err
	}
	auth := newAuthenticator(password, cfg.Pools, cfg.Logger.With("component", "nats-auth"))
	opts := &server.Options{
		ServerName: "gantry",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		// Signals belong to the process that embeds us; it decides when the bus stops.
		NoSigs: true,
		// Every client authenticates: Gantry's services as ServiceUser, launchers as their pool.
		CustomClientAuthentication: auth,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		removeTemp()
		return nil, fmt.Errorf("configure embedded NATS on %s: %w", cfg.Listen, err)
	}
	auth.setServer(ns)
	logs := &serverLogger{logger: cfg.Logger.With("component", "nats-server")}
	ns.SetLoggerV2(logs, false, false, false)
	ns.Start()

	if err := waitReady(ctx, ns, logs); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		removeTemp()
		return nil, fmt.Errorf("start embedded NATS on %s with store %s: %w", cfg.Listen, storeDir, err)
	}
	cfg.Logger.Info("embedded NATS ready", "url", ns.ClientURL(), "store_dir", storeDir)
	b := &Bus{url: ns.ClientURL(), logger: cfg.Logger, server: ns, auth: auth, cred: credential{user: ServiceUser, password: password}}
	if tempStore {
		b.tempStore = storeDir
	}
	return b, nil
}

// waitReady waits until the server accepts clients with JetStream on. It checks in short slices
// because a server that hit a fatal error (port taken, store unusable) never becomes ready, and
// its log says why at once.
func waitReady(ctx context.Context, ns *server.Server, logs *serverLogger) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if ns.ReadyForConnections(50*time.Millisecond) && ns.JetStreamEnabled() {
			return nil
		}
		if fatal := logs.fatal(); fatal != "" {
			return errors.New(fatal)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not ready with JetStream: %w", ctx.Err())
		}
	}
}
