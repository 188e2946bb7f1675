package main

import (
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

func (g *globalOptions) poolAdminClient() (gantryv1connect.WorkerPoolAdminServiceClient, error) {
	return newClient(g, gantryv1connect.NewWorkerPoolAdminServiceClient)
}

func newPoolUpdateCommand(g *globalOptions) *cobra.Command {
	var description string
	var labels []string
	var clearLabels bool
	var driftLimit int32
	cmd := &cobra.Command{
		Use:   "update POOL [--description TEXT] [--label L]... [--drift-run-limit N]",
		Short: "Change a pool's description, labels or drift-detection run limit: only the flags given change",
		Example: `  gantry pool update eu --description "EU workers" --label region=eu
  gantry pool update eu --drift-run-limit 0 --clear-labels`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var paths []string
			f := cmd.Flags()
			if f.Changed("description") {
				paths = append(paths, "description")
			}
			if f.Changed("label") || f.Changed("clear-labels") {
				paths = append(paths, "labels")
			}
			if f.Changed("drift-run-limit") {
				paths = append(paths, "drift_detection_run_limit")
			}
			switch {
			case len(paths) == 0:
				return fmt.Errorf("pool update: nothing to change: give at least one of --description, --label, --clear-labels, --drift-run-limit")
			case clearLabels && len(labels) > 0:
				return fmt.Errorf("pool update: --clear-labels and --label: give one of them")
			}
			client, err := g.poolAdminClient()
			if err != nil {
				return err
			}
			resp, err := client.UpdateWorkerPool(cmd.Context(), connect.NewRequest(&gantryv1.UpdateWorkerPoolRequest{
				Pool: args[0], Description: description, Labels: labels, DriftDetectionRunLimit: driftLimit,
				UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
			}))
			if err != nil {
				return fmt.Errorf("pool update: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg.GetPool())
			}
			return writePoolTable(w, resp.Msg.GetPool())
		},
	}
	f := cmd.Flags()
	f.StringVar(&description, "description", "", "free-text description")
	f.StringArrayVar(&labels, "label", nil, "label (repeatable; replaces the labels)")
	f.BoolVar(&clearLabels, "clear-labels", false, "remove every label")
	f.Int32Var(&driftLimit, "drift-run-limit", 0, "at most this many drift-detection runs at once (0: no limit)")
	return cmd
}

func newPoolDeleteCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete POOL",
		Short: "Delete a private worker pool no stack uses; its token stops working",
		Long: `Delete a private worker pool (by name or id). It is refused while stacks use the
pool (gantry pool show POOL lists them: move them with gantry stack update STACK
--pool OTHER), and for the public pool. The name is free at once; launchers
holding the pool's token are refused from then on.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.poolAdminClient()
			if err != nil {
				return err
			}
			resp, err := client.DeleteWorkerPool(cmd.Context(), connect.NewRequest(&gantryv1.DeleteWorkerPoolRequest{Pool: args[0]}))
			if err != nil {
				return fmt.Errorf("pool delete: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			_, err = fmt.Fprintf(w, "deleted worker pool %s\n", args[0])
			return err
		},
	}
}
