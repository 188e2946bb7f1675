package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	domainrun "github.com/gantryhq/gantry/domain/run"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

func newRunCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Trigger, list and show runs, and move them along their lifecycle",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRunTriggerCommand(g), newRunListCommand(g), newRunShowCommand(g), newRunLogsCommand(g))
	for _, a := range runActions {
		cmd.AddCommand(newRunActionCommand(g, a))
	}
	cmd.AddCommand(newRunRetryCommand(g), newRunReplanCommand(g))
	return cmd
}

// waitUsage describes --wait of run trigger and task.
const waitUsage = "wait until the run ends or waits for a confirmation, showing each state change on stderr, then print it; fail unless it FINISHED, is UNCONFIRMED or was SKIPPED"

// logsUsage describes --logs of the commands that wait.
const logsUsage = "with --wait, also stream the output of every phase to stderr"

func newRunTriggerCommand(g *globalOptions) *cobra.Command {
	var proposed, wait, logs bool
	var commit string
	cmd := &cobra.Command{
		Use:   "trigger STACK",
		Short: "Queue a run of a stack",
		Long: `Queue a run of a stack at --commit, or at the head of the stack's branch.

A tracked run (the default) may change infrastructure: it takes the stack's
run lock, one run at a time in the order they were triggered, and waits QUEUED
until it has it. A proposed run (--proposed) only plans; it never waits for the
lock and is READY at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.runClient()
			if err != nil {
				return err
			}
			typ := gantryv1.RunType_RUN_TYPE_TRACKED
			if proposed {
				typ = gantryv1.RunType_RUN_TYPE_PROPOSED
			}
			resp, err := client.TriggerRun(cmd.Context(), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: args[0], Type: typ, Commit: commit, Destroy: destroyRequested(cmd)}))
			if err != nil {
				return fmt.Errorf("run trigger: %w", err)
			}
			if wait {
				opts := waitOptions{untilUnconfirmed: true, from: domainrun.Queued}
				if logs {
					opts.logs = allPhases
				}
				return waitAndPrint(cmd.Context(), g, cmd.OutOrStdout(), cmd.ErrOrStderr(), resp.Msg.GetRun().GetId(), opts)
			}
			return g.printRun(cmd.OutOrStdout(), resp.Msg.GetRun())
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, waitUsage)
	cmd.Flags().BoolVar(&logs, "logs", false, logsUsage)
	cmd.Flags().BoolVar(&proposed, "proposed", false, "plan only: a proposed run, which never takes the stack lock")
	cmd.Flags().StringVar(&commit, "commit", "", "full commit SHA to run (default the head of the stack's branch)")
	addDestroyFlag(cmd)
	return cmd
}

func newTaskCommand(g *globalOptions) *cobra.Command {
	var commit string
	var wait, logs bool
	cmd := &cobra.Command{
		Use:   "task STACK -- COMMAND...",
		Short: "Queue a task: a command run in a stack's workspace",
		Long: `Queue a task: COMMAND runs in the stack's workspace, after terraform init, on a
worker of the stack's pool. A task takes the stack's run lock like a tracked run.
With --wait, the command's output is shown on stderr as it runs.`,
		Example: `  gantry task network -- terraform state list`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash != 1 {
				return fmt.Errorf("usage: gantry task STACK -- COMMAND...")
			}
			client, err := g.runClient()
			if err != nil {
				return err
			}
			resp, err := client.TriggerTask(cmd.Context(), connect.NewRequest(&gantryv1.TriggerTaskRequest{
				Stack: args[0], Command: strings.Join(args[1:], " "), Commit: commit,
			}))
			if err != nil {
				return fmt.Errorf("task: %w", err)
			}
			if wait {
				opts := waitOptions{untilUnconfirmed: true, from: domainrun.Queued, logs: onlyPhases(domainrun.PhasePerforming)}
				if logs {
					opts.logs = allPhases
				}
				return waitAndPrint(cmd.Context(), g, cmd.OutOrStdout(), cmd.ErrOrStderr(), resp.Msg.GetRun().GetId(), opts)
			}
			return g.printRun(cmd.OutOrStdout(), resp.Msg.GetRun())
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, waitUsage+"; the command's output is shown as it runs")
	cmd.Flags().BoolVar(&logs, "logs", false, "with --wait, also stream the output of the phases before the command to stderr")
	cmd.Flags().StringVar(&commit, "commit", "", "full commit SHA to run at (default the head of the stack's branch)")
	return cmd
}

func newRunListCommand(g *globalOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list STACK",
		Short: "List a stack's runs, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			client, err := g.runClient()
			if err != nil {
				return err
			}
			all := &gantryv1.ListRunsResponse{}
			for len(all.Runs) < limit {
				resp, err := client.ListRuns(cmd.Context(), connect.NewRequest(&gantryv1.ListRunsRequest{
					Stack: args[0], PageSize: int32(min(limit-len(all.Runs), listPageSize)), PageToken: all.NextPageToken,
				}))
				if err != nil {
					return fmt.Errorf("run list: %w", err)
				}
				all.Runs = append(all.Runs, resp.Msg.GetRuns()...)
				if all.NextPageToken = resp.Msg.GetNextPageToken(); all.NextPageToken == "" {
					break
				}
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, all)
			}
			t := newTable(w)
			t.row("ID", "TYPE", "STATE", "COMMIT", "TRIGGERED BY", "CREATED")
			for _, r := range all.GetRuns() {
				t.row(r.GetId(), runTypeName(r.GetType()), runStateName(r.GetState()), shortCommit(r.GetCommit()),
					r.GetTriggeredBy(), formatTime(r.GetCreatedAt()))
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many runs")
	return cmd
}

func newRunShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run, its state history and its outputs (sensitive values masked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.runClient()
			if err != nil {
				return err
			}
			resp, err := client.GetRun(cmd.Context(), connect.NewRequest(&gantryv1.GetRunRequest{Run: args[0]}))
			if err != nil {
				return fmt.Errorf("run show: %w", err)
			}
			return g.printRun(cmd.OutOrStdout(), resp.Msg.GetRun())
		},
	}
}

// runAction is one of the commands that move a run along its lifecycle.
type runAction struct {
	name, short string
	hasNote     bool
	// waits: the command takes --wait and --logs, waiting for the run's end.
	waits bool
	call  func(ctx context.Context, c gantryv1connect.RunServiceClient, run, note string) (*gantryv1.Run, error)
}

var runActions = []runAction{
	{"confirm", "Confirm the plan of an UNCONFIRMED run, so that it applies", false, true,
		func(ctx context.Context, c gantryv1connect.RunServiceClient, run, _ string) (*gantryv1.Run, error) {
			return runFrom(c.ConfirmRun(ctx, connect.NewRequest(&gantryv1.ConfirmRunRequest{Run: run})))
		}},
	{"discard", "Discard a run before a worker took it, or the plan of an UNCONFIRMED run", true, false,
		func(ctx context.Context, c gantryv1connect.RunServiceClient, run, note string) (*gantryv1.Run, error) {
			return runFrom(c.DiscardRun(ctx, connect.NewRequest(&gantryv1.DiscardRunRequest{Run: run, Note: note})))
		}},
	{"stop", "Ask a preparing, initializing, planning or performing run to stop", true, false,
		func(ctx context.Context, c gantryv1connect.RunServiceClient, run, note string) (*gantryv1.Run, error) {
			return runFrom(c.StopRun(ctx, connect.NewRequest(&gantryv1.StopRunRequest{Run: run, Note: note})))
		}},
	{"cancel", "Cancel a run before a worker took it; the next queued run takes the stack lock", true, false,
		func(ctx context.Context, c gantryv1connect.RunServiceClient, run, note string) (*gantryv1.Run, error) {
			return runFrom(c.CancelRun(ctx, connect.NewRequest(&gantryv1.CancelRunRequest{Run: run, Note: note})))
		}},
}

func newRunActionCommand(g *globalOptions, a runAction) *cobra.Command {
	var note string
	var wait, logs bool
	cmd := &cobra.Command{
		Use:   a.name + " RUN",
		Short: a.short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.runClient()
			if err != nil {
				return err
			}
			r, err := a.call(cmd.Context(), client, args[0], note)
			if err != nil {
				return fmt.Errorf("run %s: %w", a.name, err)
			}
			if wait {
				// The apply's progress: what happened before the
				// confirmation is not news.
				opts := waitOptions{from: domainrun.Confirmed}
				if logs {
					opts.logs = onlyPhases(domainrun.PhasePreparingApply, domainrun.PhaseApplying)
				}
				return waitAndPrint(cmd.Context(), g, cmd.OutOrStdout(), cmd.ErrOrStderr(), r.GetId(), opts)
			}
			return g.printRun(cmd.OutOrStdout(), r)
		},
	}
	if a.hasNote {
		cmd.Flags().StringVar(&note, "note", "", "why (recorded in the run's history)")
	}
	if a.waits {
		cmd.Flags().BoolVar(&wait, "wait", false, "wait until the run ends, showing each state change on stderr, then print it; fail unless it FINISHED")
		cmd.Flags().BoolVar(&logs, "logs", false, "with --wait, also stream the apply's output to stderr")
	}
	return cmd
}

// printRun prints a run as -o asks.
func (g *globalOptions) printRun(w io.Writer, r *gantryv1.Run) error {
	if g.output == outputJSON {
		return writeJSON(w, r)
	}
	return writeRunTable(w, r)
}

// writeRunTable prints a run's details, then its history.
func writeRunTable(w io.Writer, r *gantryv1.Run) error {
	t := newTable(w)
	t.row("id", r.GetId())
	t.row("stack", r.GetStackId())
	t.row("type", runTypeName(r.GetType()))
	t.row("state", runStateName(r.GetState()))
	t.row("commit", r.GetCommit())
	if r.GetType() == gantryv1.RunType_RUN_TYPE_TASK {
		t.row("command", r.GetTaskCommand())
	}
	if r.GetDriftDetection() {
		t.row("drift detection", yesNo(true))
	}
	if r.GetType() == gantryv1.RunType_RUN_TYPE_TRACKED {
		t.row("autodeploy", yesNo(r.GetAutodeploy()))
	}
	t.row("triggered", formatTime(r.GetCreatedAt())+" by "+r.GetTriggeredBy())
	t.row("worker", r.GetWorkerId())
	if p := r.GetPlan(); p != nil {
		t.row("plan", planText(p))
	}
	if r.GetStopRequestedBy() != "" {
		t.row("stop requested by", r.GetStopRequestedBy())
		if r.GetStopNote() != "" {
			t.row("stop note", r.GetStopNote())
		}
	}
	writeRunDayTwoRows(t, r)
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	h := newTable(w)
	h.row("STATE", "TIME", "ACTOR", "WORKER", "NOTE")
	for _, c := range r.GetHistory() {
		h.row(runStateName(c.GetState()), formatTime(c.GetTime()), c.GetActor(), c.GetWorkerId(), c.GetNote())
	}
	if err := h.flush(); err != nil || len(r.GetOutputs()) == 0 {
		return err
	}
	fmt.Fprintln(w)
	o := newTable(w)
	o.row("OUTPUT", "VALUE")
	for _, out := range r.GetOutputs() {
		o.row(out.GetName(), outputValue(out))
	}
	return o.flush()
}

// outputValue shows an output's JSON value, or that it is sensitive.
func outputValue(o *gantryv1.RunOutput) string {
	switch {
	case o.GetSensitive() && o.GetValueStored():
		return "(sensitive, stored sealed)"
	case o.GetSensitive():
		return "(sensitive)"
	}
	return o.GetValue()
}

// planText renders a plan summary as terraform prints it.
func planText(p *gantryv1.PlanSummary) string {
	return domainrun.PlanSummary{Add: int(p.GetAdd()), Change: int(p.GetChange()), Destroy: int(p.GetDestroy())}.String()
}

// runFrom returns the run of a lifecycle call's response.
func runFrom[T any, PT interface {
	*T
	GetRun() *gantryv1.Run
}](resp *connect.Response[T], err error) (*gantryv1.Run, error) {
	if err != nil {
		return nil, err
	}
	return PT(resp.Msg).GetRun(), nil
}

func runTypeName(t gantryv1.RunType) string   { return enumName(t.String(), "RUN_TYPE_") }
func runStateName(s gantryv1.RunState) string { return enumName(s.String(), "RUN_STATE_") }
