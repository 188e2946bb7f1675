package main

import (
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

func (g *globalOptions) rerunClient() (gantryv1connect.RerunServiceClient, error) {
	return newClient(g, gantryv1connect.NewRerunServiceClient)
}

// addDestroyFlag adds --destroy to run trigger.
func addDestroyFlag(cmd *cobra.Command) {
	cmd.Flags().Bool("destroy", false,
		"destroy the stack's resources: a tracked run that plans with -destroy and applies in DESTROYING (confirmed like any tracked run)")
}

// destroyRequested reports whether run trigger was given --destroy.
func destroyRequested(cmd *cobra.Command) bool {
	destroy, _ := cmd.Flags().GetBool("destroy") // defined by addDestroyFlag
	return destroy
}

func newRunRetryCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "retry RUN",
		Short: "Queue a new run retrying a tracked run that FAILED or was STOPPED, at the same commit",
		Long: `Queue a new run of a tracked run that FAILED or was STOPPED: the same stack,
commit and destroy flag (not the head of the branch), with the stack's settings
and environment as they are now. The new run's retry_of names the old one; it
takes the stack lock like any tracked run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.rerunClient()
			if err != nil {
				return err
			}
			r, err := runFrom(client.RetryRun(cmd.Context(), connect.NewRequest(&gantryv1.RetryRunRequest{Run: args[0]})))
			if err != nil {
				return fmt.Errorf("run retry: %w", err)
			}
			return g.printRun(cmd.OutOrStdout(), r)
		},
	}
}

func newRunReplanCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "replan RUN",
		Short: "Throw away the plan of an UNCONFIRMED run and plan it again",
		Long: `Throw away the plan of an UNCONFIRMED run: it becomes REPLAN_REQUESTED, its saved
workspace is deleted, and it is READY again for any worker of its stack's pool,
to plan at the same commit with the stack's settings and environment as they
are now. It keeps the stack lock. If the command fails half-way, run it again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.rerunClient()
			if err != nil {
				return err
			}
			r, err := runFrom(client.ReplanRun(cmd.Context(), connect.NewRequest(&gantryv1.ReplanRunRequest{Run: args[0]})))
			if err != nil {
				return fmt.Errorf("run replan: %w", err)
			}
			return g.printRun(cmd.OutOrStdout(), r)
		},
	}
}

// writeRunDayTwoRows adds what a destroy run and a retry show to the run table.
func writeRunDayTwoRows(t *table, r *gantryv1.Run) {
	if r.GetDestroy() {
		t.row("destroy", yesNo(true))
	}
	if r.GetRetryOf() != "" {
		t.row("retry of", r.GetRetryOf())
	}
}
