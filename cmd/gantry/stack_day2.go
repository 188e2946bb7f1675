package main

import (
	"fmt"
	"io"
	"slices"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

func (g *globalOptions) outputClient() (gantryv1connect.StackOutputServiceClient, error) {
	return newClient(g, gantryv1connect.NewStackOutputServiceClient)
}

// stackUpdateFlags maps each flag of stack update to the UpdateStack field
// it sets: only the flags given are changed.
var stackUpdateFlags = []struct{ flag, field string }{
	{"name", "name"}, {"repo", "repository_url"}, {"branch", "branch"}, {"project-root", "project_root"},
	{"pool", "worker_pool_id"}, {"tool", "tool"}, {"runner-image", "runner_image"}, {"description", "description"},
	{"autodeploy", "autodeploy"}, {"label", "labels"}, {"clear-labels", "labels"},
}

func newStackUpdateCommand(g *globalOptions) *cobra.Command {
	var o stackCreateOptions
	var name string
	var clearLabels bool
	cmd := &cobra.Command{
		Use:   "update STACK [--name NAME] [--repo URL] [--branch B] ...",
		Short: "Change a stack's settings: only the flags given change",
		Long: `Change the settings of a stack (by name or id) that stack create takes: only
the flags given change, the others keep their values. --name renames the stack:
the old name is free at once, the new one must be. --label replaces every label
(repeat it for several); --clear-labels removes them all. Whether Gantry manages
the stack's state is chosen at creation and cannot be changed.`,
		Example: `  gantry stack update network --branch release --autodeploy
  gantry stack update network --name network-eu --label team=core --label tier=1
  gantry stack update network --autodeploy=false --clear-labels`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var paths []string
			for _, f := range stackUpdateFlags {
				if cmd.Flags().Changed(f.flag) && !slices.Contains(paths, f.field) {
					paths = append(paths, f.field)
				}
			}
			if len(paths) == 0 {
				return fmt.Errorf("stack update: nothing to change: give at least one of --name, --repo, --branch, --project-root, --pool, --tool, --runner-image, --description, --autodeploy, --label, --clear-labels")
			}
			if clearLabels && len(o.labels) > 0 {
				return fmt.Errorf("stack update: --clear-labels and --label: give one of them")
			}
			tool, err := parseTool(o.tool)
			if err != nil {
				return err
			}
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.UpdateStack(cmd.Context(), connect.NewRequest(&gantryv1.UpdateStackRequest{
				Stack: args[0], Name: name, RepositoryUrl: o.repo, Branch: o.branch, ProjectRoot: o.projectRoot, Tool: tool,
				WorkerPoolId: o.pool, RunnerImage: o.runnerImage, Autodeploy: o.autodeploy, Labels: o.labels,
				Description: o.description, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
			}))
			if err != nil {
				return fmt.Errorf("stack update: %w", err)
			}
			return g.printStack(cmd.OutOrStdout(), resp.Msg.GetStack())
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringVar(&o.repo, "repo", "", "Git repository URL")
	f.StringVar(&o.branch, "branch", "", "branch to track")
	f.StringVar(&o.projectRoot, "project-root", "", "directory of the code in the repository (\"\" for its root)")
	f.StringVar(&o.pool, "pool", "", "worker pool id or name")
	f.StringVar(&o.tool, "tool", "", "terraform or tofu")
	f.StringVar(&o.runnerImage, "runner-image", "", "container image of runs (\"\" for the pool's)")
	f.StringVar(&o.description, "description", "", "free-text description")
	f.BoolVar(&o.autodeploy, "autodeploy", false, "apply tracked runs without waiting for a confirmation (--autodeploy=false to stop)")
	f.StringArrayVar(&o.labels, "label", nil, "label such as team=core (repeatable; replaces the labels)")
	f.BoolVar(&clearLabels, "clear-labels", false, "remove every label")
	return cmd
}

func newStackDeleteCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete STACK [--force]",
		Short: "Delete a stack no run holds or waits for; --force if its managed state holds resources",
		Long: `Delete a stack (by name or id) that no run holds or waits for; its name is free
at once. A stack whose managed state still holds resources is refused: destroy
them first (gantry run trigger STACK --destroy), or give --force to delete the
stack anyway and leave the resources where they are, unmanaged. Either way the
state is kept: gantry state versions STACK-ID and gantry state pull STACK-ID
still reach its versions.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.DeleteStack(cmd.Context(), connect.NewRequest(&gantryv1.DeleteStackRequest{Stack: args[0], Force: force}))
			if err != nil {
				return fmt.Errorf("stack delete: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			_, err = fmt.Fprintf(w, "deleted stack %s\n", args[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete although the managed state holds resources (they stay, unmanaged)")
	return cmd
}

func newStackOutputsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "outputs STACK",
		Short: "Show the outputs of a stack's current managed state version",
		Long: `Show the Terraform outputs of a stack whose state Gantry manages, as its current
state version holds them. Values are JSON. A sensitive output's value is shown
only to a token that may read secrets (an administrator's); others see
(sensitive).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.outputClient()
			if err != nil {
				return err
			}
			resp, err := client.GetStackOutputs(cmd.Context(), connect.NewRequest(&gantryv1.GetStackOutputsRequest{Stack: args[0]}))
			if err != nil {
				return fmt.Errorf("stack outputs: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			return writeOutputsTable(w, resp.Msg)
		},
	}
}

// writeOutputsTable prints outputs by name; a value too long for a table
// is cut, -o json has it whole.
func writeOutputsTable(w io.Writer, m *gantryv1.GetStackOutputsResponse) error {
	if m.GetStateVersion() == 0 {
		_, err := fmt.Fprintln(w, "no state yet: the stack has no outputs")
		return err
	}
	t := newTable(w)
	t.row("NAME", "VALUE", "SENSITIVE")
	for _, o := range m.GetOutputs() {
		value := o.GetValue()
		if o.GetHidden() {
			value = "(sensitive)"
		} else if len(value) > maxOutputCell {
			value = value[:maxOutputCell] + "…"
		}
		t.row(o.GetName(), value, yesNo(o.GetSensitive()))
	}
	return t.flush()
}

// maxOutputCell bounds an output value in the table.
const maxOutputCell = 120
