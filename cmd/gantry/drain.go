package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/drain"
	"github.com/gantryhq/gantry/services/server/scheduler"
	"github.com/gantryhq/gantry/services/server/vcs"
)

func newDrainCommand(getenv func(string) string) *cobra.Command {
	var publicURL string
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Run only the drain: webhook deliveries, scheduled runs and commit statuses",
		Long: `Run only the drain: it acts on recorded webhook deliveries (queueing the runs a
push or a pull/merge request asks for), queues the runs of fired cron schedules,
and reports webhook runs' states to their commits. Any number may run at once:
they share durable JetStream consumers, and a delivery is acted on once (at its
version). Work that keeps failing is recorded as poisoned; list it with gantry
vcs deliveries. gantry server and gantry dev run one in process.

Needs GANTRY_DATABASE_URL, GANTRY_NATS_URL and GANTRY_SECRETS_URL (the
integrations' tokens and keys are encrypted with it). --public-url is where
commit statuses link to.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secretsURL := settings.SecretsURL.Value(getenv)
			if secretsURL == "" {
				return errNoSecretsURL
			}
			return runConsumer(cmd, getenv, "drain", func(ctx context.Context, infra *externalInfra, nc *nats.Conn, log *slog.Logger) error {
				if _, err := eventstore.Migrate(ctx, infra.pool); err != nil {
					return err
				}
				store, err := openStore(infra.pool, log)
				if err != nil {
					return err
				}
				defer store.Close()
				aggs, err := aggregate.New(store, aggregate.Config{Logger: log})
				if err != nil {
					return err
				}
				keys, err := openSecrets(ctx, infra.pool, secretsURL, keyring.WithRSAPrivateKey(settings.EncryptionRSAKey.Value(getenv)))
				if err != nil {
					return err
				}
				defer keys.close()
				waiter := projections.NewWaiter(infra.pool, log)
				cmds, err := commands.New(commands.Config{Aggregates: aggs, Waiter: waiter, Secrets: keys.keeper, Pools: commands.CAPools{CA: keys.ca},
					ServerURL: publicURL, NATSURL: infra.bus.URL(), Logger: log})
				if err != nil {
					return err
				}
				d, err := newDrain(infra.pool, infra.bus, cmds, publicURL, log)
				if err != nil {
					return err
				}
				log.Info("drain running")
				return supervisor.Run(ctx, supervisor.Config{Logger: log},
					supervisor.Component{Name: "projection-waiter", Run: waiter.Run}, supervisor.Component{Name: "drain", Run: d.Run})
			})
		},
	}
	cmd.Flags().StringVar(&publicURL, "public-url", "http://localhost:1983", "Gantry's URL as users reach it: commit statuses link to <public-url>/runs/<run id>")
	return cmd
}

// newDrain builds the drain of a process: its own NATS connection, the
// process's command layer, and commit statuses linking to publicURL.
func newDrain(pool *pgxpool.Pool, b *bus.Bus, cmds *commands.Service, publicURL string, log *slog.Logger) (*drain.Drain, error) {
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		return nil, err
	}
	return drain.New(drain.Config{
		Connect:  func() (*nats.Conn, error) { return b.Connect("gantry-drain") },
		Registry: reg, Commands: cmds, Stacks: projections.NewQueries(pool),
		Statuses: &vcs.Reporter{Origins: cmds, ServerURL: publicURL}, Logger: log,
	})
}

// newSchedules builds the cron loop of a scheduler process.
func newSchedules(pool *pgxpool.Pool, cmds scheduler.ScheduleCommands, log *slog.Logger) (supervisor.Component, error) {
	s, err := scheduler.NewSchedules(scheduler.SchedulesConfig{Pool: pool, Commands: cmds, Logger: log})
	if err != nil {
		return supervisor.Component{}, err
	}
	return supervisor.Component{Name: "schedules", Run: s.Run}, nil
}
