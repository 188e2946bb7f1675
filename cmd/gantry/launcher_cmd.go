package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/worker/launcher"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

func newLauncherCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "launcher",
		Short: "Run one worker of a worker pool on this machine",
		Long: `Run one worker of a worker pool: it joins the pool with GANTRY_TOKEN (the pool
token gantry pool create or reset printed) and GANTRY_POOL_PRIVATE_KEY (base64 of
the PEM private key the pool's CSR was made with), registers, and runs the runs it
is assigned one at a time with the stack's terraform or tofu from PATH.

Settings (environment):
  GANTRY_MASK_ENVS                             comma list of whitelisted variables masked in logs
  GANTRY_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED   also print run logs as JSON lines on stdout
  GANTRY_LAUNCHER_LOGS_TIMEOUT                 fail a run that prints nothing this long (default 7m)
  GANTRY_LAUNCHER_RUN_TIMEOUT                  maximum run time (default 70m)
  GANTRY_LAUNCHER_SHUTDOWN_GRACE               how long a run may go on after SIGTERM (default 90s)
  GANTRY_LAUNCHER_WORK_DIR                     where run workspaces are made (default the temp dir)
  GANTRY_DEBUG                                 print every command a run executes
  GANTRY_WHITELIST_ENVS                        launcher variables passed to runs (ro_/wo_ prefixes)
  GANTRY_METADATA_<key>                        metadata sent at registration

OTEL_EXPORTER_OTLP_ENDPOINT (and the other standard OTEL_* variables) export
each run's span, in the trace the server sent with the assignment.

SIGTERM or SIGINT: the worker takes no new run, lets the current one finish
within the shutdown grace, fails it with a note if it cannot, and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(getenv)
			if err != nil {
				return err
			}
			// GANTRY_METADATA_* and the whitelisted variables are open-ended
			// names: the launcher reads the whole environment.
			cfg, err := launcher.FromEnv(os.Environ(), cmd.OutOrStdout())
			if err != nil {
				return err
			}
			cfg.Logger = log
			traces, err := startTracing(cmd.Context(), getenv, "gantry-launcher")
			if err != nil {
				return err
			}
			defer stopTracing(traces, log)
			cfg.TracerProvider = traces.Provider()
			uploads := workerclient.New(cfg.Token.ServerURL, cfg.Token.PoolID, cfg.Token.PoolSecret, nil)
			l, err := launcher.New(cfg, uploads)
			if err != nil {
				return err
			}
			if err := l.Run(cmd.Context()); err != nil {
				return fmt.Errorf("launcher: %w", err)
			}
			return nil
		},
	}
}
