package main

import (
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/server/instrumentation"
)

func newServerCommand(getenv func(string) string) *cobra.Command {
	var listen, publicURL, adminKeyFile string
	var instrumentationListen func() (string, error) // resolved once the flags are parsed
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API, the event relay, the projector, the scheduler and the worker gateway against external PostgreSQL and NATS",
		Long: `Run the Connect API, the event relay and a projector. Any number of server
processes may run against the same database and NATS: one relay is active, the
others stand by; the projectors share the work.

Needs GANTRY_DATABASE_URL, GANTRY_NATS_URL, GANTRY_SECRETS_URL (the keeper
that encrypts secret values, the server's keys, state files and run logs,
chosen once at install: rsakey:// with the RSA private key in
GANTRY_ENCRYPTION_RSA_PRIVATE_KEY, base64key://<32 bytes in base64url>, or
awskms://, gcpkms://, azurekeyvault://, hashivault://) and GANTRY_BLOB_URL (the
object storage of state files, run logs and saved workspaces:
file:///var/lib/gantry/blobs, s3://bucket?region=eu-west-1, gs://bucket,
azblob://container; every server replica must use the same bucket). See
docs/configuration.md. Pool tokens send launchers to --public-url and to
GANTRY_NATS_URL.

Probes and Prometheus metrics are served on --instrumentation-listen:
/startup, /readiness (PostgreSQL, NATS and the bucket answer), /liveness and
/metrics. Traces are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; OTEL_EXPORTER_OTLP_PROTOCOL is
http/protobuf (default) or grpc, and the other standard OTEL_* variables apply.

Session tokens are signed with the private key in GANTRY_SIGNING_KEY_FILE (or
the PEM itself in GANTRY_SIGNING_KEY): Ed25519 or ECDSA P-256, the same for
every replica. GANTRY_VERIFY_KEYS_FILE (or GANTRY_VERIFY_KEYS) adds public keys
whose tokens are still accepted, for a rotation.

On a NATS cluster, GANTRY_NATS_REPLICAS (1 to 5, default 1) sets the replicas
of the EVENTS and RUN_LOGS streams.

When no admin API key is live, --admin-key-file (GANTRY_ADMIN_KEY_FILE) makes
one and writes it to that file (mode 0600); it is never logged.
Hand it to "gantry login --server URL --key-file FILE".`,

		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(getenv)
			if err != nil {
				return err
			}
			secretsURL := settings.SecretsURL.Value(getenv)
			if secretsURL == "" {
				return errNoSecretsURL
			}
			blobURL := settings.BlobURL.Value(getenv)
			if blobURL == "" {
				return fmt.Errorf("server needs GANTRY_BLOB_URL: the object storage of state files, run logs and saved workspaces, such as file:///var/lib/gantry/blobs or s3://bucket?region=eu-west-1 (the same for every replica)")
			}
			if publicURL == "" {
				publicURL = defaultPublicURL(listen)
			}
			callout, err := calloutFromEnv(getenv)
			if err != nil {
				return err
			}
			instrumentationAddr, err := instrumentationListen()
			if err != nil {
				return err
			}
			replicas, err := settings.NATSReplicas.Int(getenv)
			if err != nil {
				return err
			}
			signing, _, err := signingKeysFromEnv(getenv, "")
			if err != nil {
				return err
			}
			if adminKeyFile == "" {
				adminKeyFile = settings.AdminKeyFile.Value(getenv)
			}
			ctx := cmd.Context()
			traces, err := startTracing(ctx, getenv, "gantry-server")
			if err != nil {
				return err
			}
			defer stopTracing(traces, log)
			infra, err := openExternalInfra(ctx, getenv, "server", bus.Config{Logger: log})
			if err != nil {
				return err
			}
			defer infra.close()
			pool, b := infra.pool, infra.bus
			return runServer(ctx, pool, b, serverConfig{listen: listen, publicURL: publicURL, secretsURL: secretsURL, blobURL: blobURL, log: log,
				callout: callout, instrumentationListen: instrumentationAddr, tracing: traces.Provider(), rsaKey: settings.EncryptionRSAKey.Value(getenv),
				signingKeys: signing, adminKeyFile: adminKeyFile, streamReplicas: replicas})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":1983", "address of the HTTP API (Connect RPC, gRPC health and reflection)")
	instrumentationListen = instrumentationFlag(cmd, getenv, instrumentation.DefaultListen)
	cmd.Flags().StringVar(&publicURL, "public-url", "", "URL launchers reach the API at, put in pool tokens (default http://<listen>, localhost for an unspecified host)")
	cmd.Flags().StringVar(&adminKeyFile, "admin-key-file", "", "when no admin API key is live, create one and write it to this file, mode 0600 (env GANTRY_ADMIN_KEY_FILE)")
	return cmd
}

func newMigrateCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema migrations (GANTRY_DATABASE_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dbURL := settings.DatabaseURL.Value(getenv)
			if dbURL == "" {
				return fmt.Errorf("migrate needs GANTRY_DATABASE_URL")
			}
			pool, err := pgxpool.New(cmd.Context(), dbURL)
			if err != nil {
				return fmt.Errorf("GANTRY_DATABASE_URL: %w", err)
			}
			defer pool.Close()
			applied, err := eventstore.Migrate(cmd.Context(), pool)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied migrations %v\n", applied)
			return nil
		},
	}
}

// defaultPublicURL is http://<listen>, with localhost for a listen address
// without a host (":1983") or with an unspecified one ("0.0.0.0:1983").
func defaultPublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
