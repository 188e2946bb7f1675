package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// gantry server on an external NATS that delegates launchers to Gantry's
// auth callout: a real launcher process joins its pool with its token and
// runs a run, logs included.
func TestLaunchersOnAnExternalNATSWithTheAuthCallout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS and the server")
	}
	const servicePassword = "external-nats-service-password"
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	issuerPub, _ := issuer.PublicKey()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir(),
		Users:       []*server.User{{Username: bus.ServiceUser, Password: servicePassword}},
		AuthCallout: &server.AuthCallout{Issuer: issuerPub, AuthUsers: []string{bus.ServiceUser}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	addr := strings.TrimPrefix(ns.ClientURL(), "nats://")
	b, err := bus.Start(context.Background(), bus.Config{URL: "nats://" + bus.ServiceUser + ":" + servicePassword + "@" + addr})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerOn(t, b, func(c *serverConfig) { c.callout = calloutSettings{issuer: issuer} })

	pool := startLauncherPool(t, srv, "external", 1)
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "ext", RepositoryUrl: demoRepo(t), WorkerPoolId: pool.id, ManagedState: true, Autodeploy: true})
	run := c.trigger(t, "ext", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
	if logs := srv.mustCLI(t, "run", "logs", run); !strings.Contains(logs, "Apply complete!") {
		t.Errorf("the run's log lacks the apply:\n%s", logs)
	}
	// A token whose secret is wrong is refused by the callout at connect.
	tok, err := protocol.DecodePoolToken(strings.TrimPrefix(pool.env[0], "GANTRY_TOKEN="))
	if err != nil {
		t.Fatal(err)
	}
	tok.PoolSecret = "not-the-pool-secret"
	forged, err := protocol.EncodePoolToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	p := startGantryEnv(t, []string{"GANTRY_TOKEN=" + forged, pool.env[1]}, "launcher")
	if err := p.exit(t, 20*time.Second); err == nil {
		t.Error("a launcher with a wrong pool secret ran")
	}
}
