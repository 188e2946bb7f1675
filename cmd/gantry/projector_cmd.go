package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/settings"
)

func newProjectorCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projector",
		Short: "Run only the projector, which builds the read models from the events",
		Long: `Run only the projector: it keeps the read models (tables rm_*) up to date with
the event store, as a durable JetStream consumer shared by every projector.
Any number may run at once. gantry server and gantry dev run one in process.

Needs GANTRY_DATABASE_URL and GANTRY_NATS_URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsumer(cmd, getenv, "projector", func(ctx context.Context, infra *externalInfra, nc *nats.Conn, log *slog.Logger) error {
				return runProjector(ctx, infra.pool, nc, log)
			})
		},
	}
	cmd.AddCommand(newProjectorRebuildCommand(getenv))
	return cmd
}

func newProjectorRebuildCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "rebuild [NAME...]",
		Short: "Empty read models and rebuild them from every event (all when none is named)",
		Long: fmt.Sprintf(`Empty the named read models and replay every event into them; with no NAME,
all of them. Projectors running meanwhile wait, then carry on. The read models
are %v.

Needs GANTRY_DATABASE_URL.`, projections.Names()),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(getenv)
			if err != nil {
				return err
			}
			dbURL := settings.DatabaseURL.Value(getenv)
			if dbURL == "" {
				return fmt.Errorf("projector rebuild needs GANTRY_DATABASE_URL")
			}
			pool, err := pgxpool.New(cmd.Context(), dbURL)
			if err != nil {
				return fmt.Errorf("GANTRY_DATABASE_URL: %w", err)
			}
			defer pool.Close()
			if err := rebuildProjections(cmd.Context(), pool, log, args...); err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				names = projections.Names()
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "rebuilt %v\n", names)
			return err
		},
	}
}
