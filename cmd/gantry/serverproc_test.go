package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// serverProcess is `gantry server` run as a child process, as an operator
// runs it, on a database of the shared test cluster and an external NATS
// (with Gantry's auth callout): the test can kill it and start it again.
type serverProcess struct {
	*testServer
	env    []string
	listen string
	proc   *gantryProc
}

// startServerProcess starts `gantry server` and returns once it answers.
func startServerProcess(t *testing.T) *serverProcess {
	t.Helper()
	const servicePassword = "external-nats-service-password"
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	issuerPub, _ := issuer.PublicKey()
	issuerSeed, _ := issuer.Seed()
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
	natsURL := "nats://" + bus.ServiceUser + ":" + servicePassword + "@" + strings.TrimPrefix(ns.ClientURL(), "nats://")

	dbURL := testenv.Postgres(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	secretsURL := "base64key://" + base64.URLEncoding.EncodeToString(key)
	blobURL, err := objstore.FileURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	signingKey, _, _ := signingPEM(t)
	signing, err := auth.ParseKeySet(signingKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	configDir := t.TempDir()
	adminKeyFile := filepath.Join(configDir, "admin.key")
	p := &serverProcess{listen: listen, env: []string{
		"GANTRY_DATABASE_URL=" + dbURL, "GANTRY_NATS_URL=" + natsURL, "GANTRY_SECRETS_URL=" + secretsURL,
		"GANTRY_BLOB_URL=" + blobURL, "GANTRY_NATS_CALLOUT_ISSUER_SEED=" + string(issuerSeed),
		envSigningKey + "=" + string(signingKey), "GANTRY_ADMIN_KEY_FILE=" + adminKeyFile,
	}}
	p.start(t)

	ctx := context.Background()
	pool, err := eventstore.OpenPool(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(pool, reg)
	t.Cleanup(store.Close)
	keys, err := openKeys(ctx, pool, secretsURL, signing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keys.close() })
	url := "http://" + listen
	// The server made the first admin key; the CLI signs in with it.
	var adminKey []byte
	await.Until(t, 30*time.Second, "the server to write the admin key", func() bool {
		adminKey, err = os.ReadFile(adminKeyFile)
		return err == nil && len(adminKey) > 0
	})
	if err := auth.SaveCredentials(filepath.Join(configDir, "credentials.json"), auth.Credentials{Server: url, Token: strings.TrimSpace(string(adminKey))}); err != nil {
		t.Fatal(err)
	}
	p.testServer = &testServer{url: url, dbURL: dbURL, natsURL: natsURL, configDir: configDir, blobURL: blobURL, pool: pool, store: store, keys: keys,
		secretsURL: secretsURL, signing: signing, apiKeys: map[string]string{}}
	return p
}

// start starts the server process on its address and waits until it
// answers.
func (p *serverProcess) start(t *testing.T) {
	t.Helper()
	p.proc = startGantryEnv(t, p.env, "server", "--listen", p.listen, "--public-url", "http://"+p.listen)
	await.Until(t, 60*time.Second, "the server to answer", func() bool {
		res, err := http.Get("http://" + p.listen + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// kill ends the server process with SIGKILL.
func (p *serverProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.proc.exit(t, 10*time.Second)
}
