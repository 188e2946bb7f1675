package main

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/scheduler"
)

func newSchedulerCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "scheduler",
		Short: "Run only the scheduler, which assigns READY runs to idle workers",
		Long: `Run only the scheduler: it assigns READY runs to idle, undrained workers of their
pool (tracked runs and tasks first, then proposed, then drift detection; first
queued first) and tells the worker over NATS at once. Any number may run at once:
an assignment is guarded by the run's and the worker's versions, so no run goes to
two workers. It also fires cron schedules (drift detection, scheduled runs and
tasks) once per tick across replicas; a drain queues their runs. gantry server
and gantry dev run one in process.

Needs GANTRY_DATABASE_URL and GANTRY_NATS_URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsumer(cmd, getenv, "scheduler", func(ctx context.Context, infra *externalInfra, nc *nats.Conn, log *slog.Logger) error {
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
				// Assignments are system commands: no secrets keeper, no CA.
				cmds, err := commands.NewSystem(commands.SystemConfig{Aggregates: aggs, Logger: log})
				if err != nil {
					return err
				}
				s, err := scheduler.New(scheduler.Config{Pool: infra.pool, Aggregates: aggs, Commands: cmds, NATS: nc, Logger: log})
				if err != nil {
					return err
				}
				schedules, err := newSchedules(infra.pool, cmds, log)
				if err != nil {
					return err
				}
				log.Info("scheduler running")
				return supervisor.Run(ctx, supervisor.Config{Logger: log}, supervisor.Component{Name: "scheduler", Run: s.Run}, schedules)
			})
		},
	}
}
