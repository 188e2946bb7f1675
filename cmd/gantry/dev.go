package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/devstack"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/server/api"
	"github.com/gantryhq/gantry/services/server/instrumentation"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/launcher"
)

// stopTimeout bounds how long `gantry dev` takes to stop after Ctrl-C.
const stopTimeout = 5 * time.Second

func newDevCommand(getenv func(string) string) *cobra.Command {
	var dataDir, listen, natsListen, publicURL string
	var workers int
	var executorKind string
	var instrumentationListen func() (string, error) // resolved once the flags are parsed
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every component in one process with embedded defaults",
		Long: `Run every component in one process. With no configuration it starts a private
PostgreSQL cluster from the installed server binaries, an embedded NATS server with
JetStream and a file:// bucket, all under --data-dir.

It also runs the built-in public worker pool: --workers launchers (default 2)
that run each run with terraform or tofu from PATH, in <data-dir>/runs. The
pool's private key stays in <data-dir>/public-pool.key. With --executor docker
each run runs in a container of the stack's runner image (the default one,
gantry/runner:1, is built from the host's busybox when it is missing), with the
Docker settings of gantry launcher (GANTRY_WORKER_NETWORK, …).

GANTRY_DATABASE_URL, GANTRY_NATS_URL and GANTRY_BLOB_URL (s3://, gs://, azblob://)
replace each embedded part. Secrets, state files and run logs are encrypted with
a local key in <data-dir>/secrets.key unless GANTRY_SECRETS_URL names another
keeper (chosen once: see docs/configuration.md).
Session tokens are signed with a local key in <data-dir>/signing-key.pem unless
GANTRY_SIGNING_KEY_FILE names another.

On first start it creates an admin API key and writes it, with the server's
URL, to the CLI's credentials file (GANTRY_CONFIG_DIR/credentials.json, or
gantry/credentials.json in your configuration directory), where every gantry
command finds it. The key is never printed; the start-up lines say where it is.
The API's port also serves the web UI (docs/ui.md); the "ui" line carries a
one-time link that signs a browser in with that key (once, within 10 minutes).
Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(getenv)
			if err != nil {
				return err
			}
			instrumentationAddr, err := instrumentationListen()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			traces, err := startTracing(ctx, getenv, "gantry-dev")
			if err != nil {
				return err
			}
			defer stopTracing(traces, log)
			stack, err := devstack.Start(ctx, devstack.Config{
				DataDir:     dataDir,
				DatabaseURL: settings.DatabaseURL.Value(getenv),
				NATSURL:     settings.NATSURL.Value(getenv),
				NATSListen:  natsListen,
				BlobURL:     settings.BlobURL.Value(getenv),
				Logger:      log,
			})
			if err != nil {
				return err
			}
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
				defer cancel()
				if err := stack.Stop(sctx); err != nil {
					log.Error("stop the dev stack", "err", err)
				}
			}()
			secretsURL := settings.SecretsURL.Value(getenv)
			if secretsURL == "" {
				if secretsURL, err = keyring.DevKeeperURL(dataDir); err != nil {
					return err
				}
			}
			credentials, err := credentialsPath(getenv)
			if err != nil {
				return err
			}
			signing, signingWhere, err := signingKeysFromEnv(getenv, dataDir)
			if err != nil {
				return err
			}
			if publicURL == "" {
				publicURL = defaultPublicURL(listen)
			}
			out := cmd.OutOrStdout()
			for _, c := range stack.Components {
				fmt.Fprintf(out, "%-9s %s\n", c.Name, c.Where)
			}
			fmt.Fprintf(out, "%-9s %s\n", "signing", "session tokens signed with "+signingWhere)
			if workers < 0 {
				return fmt.Errorf("--workers %d: must not be negative", workers)
			}
			var docker *executor.DockerConfig
			switch executorKind {
			case launcher.ExecutorProcess:
			case launcher.ExecutorDocker:
				if docker, err = launcher.DockerFromEnv(getenv, launcher.ExecutorDocker); err != nil {
					return err
				}
				if err := ensureRunnerImage(ctx, docker, out); err != nil {
					return err
				}
			default:
				return fmt.Errorf("--executor %q: want %s or %s", executorKind, launcher.ExecutorProcess, launcher.ExecutorDocker)
			}
			return runServer(ctx, stack.Pool, stack.Bus, serverConfig{
				listen: listen, publicURL: publicURL, secretsURL: secretsURL, rsaKey: settings.EncryptionRSAKey.Value(getenv), blobURL: stack.BlobURL, signingKeys: signing, adminCredentials: credentials, log: log,
				publicWorkers: workers, dataDir: dataDir, path: settings.Path.Value(getenv), docker: docker,
				instrumentationListen: instrumentationAddr, tracing: traces.Provider(),
				ready: func(lines []component) {
					for _, c := range lines {
						fmt.Fprintf(out, "%-9s %s\n", c.name, c.where)
					}
					fmt.Fprintln(out, "gantry dev is running; Ctrl-C stops it")
				}})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", ".gantry", "directory for the private cluster, NATS storage and the bucket")
	cmd.Flags().StringVar(&listen, "listen", api.DefaultListen, "address of the HTTP API (Connect RPC)")
	cmd.Flags().StringVar(&natsListen, "nats-listen", bus.DefaultListen, "address of the embedded NATS server")
	instrumentationListen = instrumentationFlag(cmd, getenv, instrumentation.DefaultDevListen)
	cmd.Flags().IntVar(&workers, "workers", 2, "launchers of the public worker pool to run in process (0: none)")
	cmd.Flags().StringVar(&executorKind, "executor", launcher.ExecutorProcess, "how the public pool runs runs: process (on this host) or docker (in containers)")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "URL launchers reach the API at, put in pool tokens (default http://<listen>)")
	return cmd
}
