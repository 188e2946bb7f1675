package main

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/bus"
)

func newServerCommand(getenv func(string) string) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API and the event relay against external PostgreSQL and NATS",
		Long: `Run the Connect API and the event relay. Any number of server processes may run
against the same database and NATS: one relay is active, the others stand by.

Needs GANTRY_DATABASE_URL and GANTRY_NATS_URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(getenv)
			if err != nil {
				return err
			}
			dbURL, natsURL := getenv("GANTRY_DATABASE_URL"), getenv("GANTRY_NATS_URL")
			if dbURL == "" || natsURL == "" {
				return fmt.Errorf("server needs GANTRY_DATABASE_URL and GANTRY_NATS_URL (or run `gantry dev` for embedded defaults)")
			}
			ctx := cmd.Context()
			pool, err := pgxpool.New(ctx, dbURL)
			if err != nil {
				return fmt.Errorf("GANTRY_DATABASE_URL: %w", err)
			}
			defer pool.Close()
			b, err := bus.Start(ctx, bus.Config{URL: natsURL, Logger: log})
			if err != nil {
				return err
			}
			defer b.Shutdown()
			return runServer(ctx, pool, b, serverConfig{listen: listen, log: log})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":1983", "address of the HTTP API (Connect RPC)")
	return cmd
}

func newMigrateCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema migrations (GANTRY_DATABASE_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dbURL := getenv("GANTRY_DATABASE_URL")
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
