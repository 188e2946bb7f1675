package main

import (
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newStackDriftCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Schedule drift detection on a stack and list the drift found",
		Args:  cobra.NoArgs,
	}
	var reconcile bool
	var expr string
	set := &cobra.Command{
		Use:   "set STACK --cron EXPR [--reconcile]",
		Short: "Run drift detection on a cron schedule",
		Long: `Run a PROPOSED drift-detection run on the stack at each tick of --cron (five
fields, UTC; CRON_TZ=Zone may lead; @hourly and the like work too). A plan with
changes is recorded as drift with the addresses of the changed resources; with
--reconcile a TRACKED run at the same commit follows. A pool's drift run limit
caps how many drift runs run at once on it.`,
		Example: `  gantry stack drift set network --cron '*/15 * * * *' --reconcile`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.scheduleClient()
			if err != nil {
				return err
			}
			resp, err := client.SetDriftDetection(cmd.Context(), connect.NewRequest(&gantryv1.SetDriftDetectionRequest{Stack: args[0], Cron: expr, Reconcile: reconcile}))
			if err != nil {
				return fmt.Errorf("stack drift set: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "drift detection of %s: %s (schedule %s)\n", args[0], expr, resp.Msg.GetScheduleId())
			return nil
		},
	}
	set.Flags().StringVar(&expr, "cron", "", "cron expression (required)")
	set.Flags().BoolVar(&reconcile, "reconcile", false, "queue a TRACKED run after each drift run that finds drift")
	_ = set.MarkFlagRequired("cron")
	unset := &cobra.Command{
		Use:   "unset STACK",
		Short: "Stop drift detection on a stack",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.scheduleClient()
			if err != nil {
				return err
			}
			if _, err := client.DeleteSchedule(cmd.Context(), connect.NewRequest(&gantryv1.DeleteScheduleRequest{Schedule: args[0]})); err != nil {
				return fmt.Errorf("stack drift unset: %w", err)
			}
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list STACK",
		Short: "List the drift found on a stack, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.scheduleClient()
			if err != nil {
				return err
			}
			resp, err := client.ListDriftDetections(cmd.Context(), connect.NewRequest(&gantryv1.ListDriftDetectionsRequest{Stack: args[0]}))
			if err != nil {
				return fmt.Errorf("stack drift list: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg)
			}
			t := newTable(cmd.OutOrStdout())
			t.row("RUN", "FOUND", "COMMIT", "RECONCILE RUN", "RESOURCES")
			for _, d := range resp.Msg.GetDetections() {
				t.row(d.GetRunId(), formatTime(d.GetTime()), d.GetCommit(), d.GetReconcileRunId(), strings.Join(d.GetResources(), " "))
			}
			return t.flush()
		},
	}
	cmd.AddCommand(set, unset, list)
	return cmd
}

func newStackScheduleCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Queue tracked runs or tasks on a cron schedule",
		Args:  cobra.NoArgs,
	}
	var expr, task string
	var tracked bool
	add := &cobra.Command{
		Use:     "add STACK --cron EXPR (--tracked | --task COMMAND)",
		Short:   "Queue a tracked run or a task at each tick of --cron",
		Example: "  gantry stack schedule add network --cron '0 3 * * *' --task 'terraform state list'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := gantryv1.ScheduleKind_SCHEDULE_KIND_TASK
			switch {
			case tracked && task != "":
				return fmt.Errorf("give --tracked or --task, not both")
			case tracked:
				kind = gantryv1.ScheduleKind_SCHEDULE_KIND_TRACKED
			case task == "":
				return fmt.Errorf("give --tracked or --task COMMAND")
			}
			client, err := g.scheduleClient()
			if err != nil {
				return err
			}
			resp, err := client.AddSchedule(cmd.Context(), connect.NewRequest(&gantryv1.AddScheduleRequest{Stack: args[0], Kind: kind, Cron: expr, TaskCommand: task}))
			if err != nil {
				return fmt.Errorf("stack schedule add: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg)
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.Msg.GetScheduleId())
			return nil
		},
	}
	add.Flags().StringVar(&expr, "cron", "", "cron expression (required)")
	add.Flags().BoolVar(&tracked, "tracked", false, "queue a TRACKED run")
	add.Flags().StringVar(&task, "task", "", "queue a TASK running this command")
	_ = add.MarkFlagRequired("cron")
	list := &cobra.Command{
		Use:   "list STACK",
		Short: "List a stack's schedules, drift detection included",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.scheduleClient()
			if err != nil {
				return err
			}
			resp, err := client.ListSchedules(cmd.Context(), connect.NewRequest(&gantryv1.ListSchedulesRequest{Stack: args[0]}))
			if err != nil {
				return fmt.Errorf("stack schedule list: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg)
			}
			t := newTable(cmd.OutOrStdout())
			t.row("ID", "KIND", "CRON", "RECONCILE", "TASK", "LAST TICK", "LAST RUN", "LAST ERROR")
			for _, s := range resp.Msg.GetSchedules() {
				t.row(s.GetId(), strings.TrimPrefix(s.GetKind().String(), "SCHEDULE_KIND_"), s.GetCron(), yesNo(s.GetReconcile()), s.GetTaskCommand(),
					formatTime(s.GetLastTick()), s.GetLastRunId(), s.GetLastError())
			}
			return t.flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete SCHEDULE",
		Short: "Remove a schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.scheduleClient()
			if err != nil {
				return err
			}
			if _, err := client.DeleteSchedule(cmd.Context(), connect.NewRequest(&gantryv1.DeleteScheduleRequest{Schedule: args[0]})); err != nil {
				return fmt.Errorf("stack schedule delete: %w", err)
			}
			return nil
		},
	}
	cmd.AddCommand(add, list, del)
	return cmd
}
