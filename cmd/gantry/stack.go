package main

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newStackCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stack",
		Short: "Create, update, delete, list, show and lock stacks; their environment and outputs",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStackCreateCommand(g), newStackListCommand(g), newStackShowCommand(g),
		newStackLockCommand(g), newStackUnlockCommand(g), newStackEnvCommand(g), newStackDriftCommand(g), newStackScheduleCommand(g))
	cmd.AddCommand(newStackUpdateCommand(g), newStackDeleteCommand(g), newStackOutputsCommand(g))
	return cmd
}

type stackCreateOptions struct {
	repo, branch, projectRoot, pool, tool, runnerImage, description string
	importState, vcs                                                string
	autodeploy, managedState                                        bool
	labels                                                          []string
}

func newStackCreateCommand(g *globalOptions) *cobra.Command {
	var o stackCreateOptions
	cmd := &cobra.Command{
		Use:   "create NAME --repo URL",
		Short: "Create a stack",
		Long: `Create a stack: a unit of infrastructure built from the code at --project-root
of --branch in the Git repository --repo (file://, an absolute path, http(s)://,
ssh:// or user@host:path). Names are unique, whatever their case.

--managed-state lets Gantry keep the stack's Terraform state (its http backend,
versions, locks); it is chosen here and cannot be changed later.
--import-state FILE (implies --managed-state) stores an existing Terraform state
file as the stack's state version 1, together with the stack's creation: an
invalid or too large file creates nothing.`,
		Example: `  gantry stack create network --repo https://git.example.com/infra.git --project-root network
  gantry stack create demo --repo file:///srv/git/demo --tool tofu --label team=core --autodeploy
  gantry stack create legacy --repo https://git.example.com/infra.git --import-state terraform.tfstate`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tool, err := parseTool(o.tool)
			if err != nil {
				return err
			}
			managed := o.managedState
			var imported []byte
			if o.importState != "" {
				if cmd.Flags().Changed("managed-state") && !o.managedState {
					return fmt.Errorf("--import-state needs managed state: drop --managed-state=false")
				}
				managed = true
				if imported, err = readStateFile(o.importState); err != nil {
					return err
				}
			}
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.CreateStack(cmd.Context(), connect.NewRequest(&gantryv1.CreateStackRequest{
				Name: args[0], RepositoryUrl: o.repo, Branch: o.branch, ProjectRoot: o.projectRoot,
				Tool: tool, WorkerPoolId: o.pool, RunnerImage: o.runnerImage, Autodeploy: o.autodeploy,
				Labels: o.labels, Description: o.description, ManagedState: managed, ImportState: imported,
				VcsIntegration: o.vcs,
			}))
			if err != nil {
				return fmt.Errorf("stack create: %w", err)
			}
			return g.printStack(cmd.OutOrStdout(), resp.Msg.GetStack())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", "", "Git repository URL (required)")
	f.StringVar(&o.branch, "branch", "", "branch to track (default main)")
	f.StringVar(&o.projectRoot, "project-root", "", "directory of the code in the repository (default its root)")
	f.StringVar(&o.pool, "pool", "", "worker pool id or name (default the public pool)")
	f.StringVar(&o.tool, "tool", "", "terraform or tofu (default terraform)")
	f.StringVar(&o.runnerImage, "runner-image", "", "container image of runs (default the pool's)")
	f.StringVar(&o.description, "description", "", "free-text description")
	f.BoolVar(&o.autodeploy, "autodeploy", false, "apply tracked runs without waiting for a confirmation")
	f.BoolVar(&o.managedState, "managed-state", false, "let Gantry keep the Terraform state (cannot be changed later)")
	f.StringVar(&o.importState, "import-state", "", "Terraform state file to store as state version 1 (implies --managed-state)")
	f.StringArrayVar(&o.labels, "label", nil, "label such as team=core (repeatable)")
	f.StringVar(&o.vcs, "vcs", "", "VCS integration (name or id) whose webhooks queue the stack's runs and whose credentials clone it")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

// parseTool maps --tool to the API enum.
func parseTool(s string) (gantryv1.Tool, error) {
	switch strings.ToLower(s) {
	case "":
		return gantryv1.Tool_TOOL_UNSPECIFIED, nil
	case "terraform":
		return gantryv1.Tool_TOOL_TERRAFORM, nil
	case "tofu", "opentofu":
		return gantryv1.Tool_TOOL_TOFU, nil
	}
	return 0, fmt.Errorf("--tool %q: use terraform or tofu", s)
}

func newStackListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List stacks by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			stacks, err := allPages(func(token string) ([]*gantryv1.Stack, string, error) {
				resp, err := client.ListStacks(cmd.Context(), connect.NewRequest(&gantryv1.ListStacksRequest{PageSize: listPageSize, PageToken: token}))
				if err != nil {
					return nil, "", fmt.Errorf("stack list: %w", err)
				}
				return resp.Msg.GetStacks(), resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			all := &gantryv1.ListStacksResponse{Stacks: stacks}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, all)
			}
			t := newTable(w)
			t.row("NAME", "ID", "BRANCH", "TOOL", "POOL", "LOCK", "RUN LOCK", "QUEUED")
			for _, s := range all.GetStacks() {
				t.row(s.GetName(), s.GetId(), s.GetBranch(), toolName(s.GetTool()), s.GetWorkerPoolId(),
					s.GetManualLock().GetHolder(), s.GetLockHolderRunId(), fmt.Sprint(len(s.GetQueuedRunIds())))
			}
			return t.flush()
		},
	}
}

// listPageSize is the page size list commands fetch with.
const listPageSize = 200

func newStackShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show STACK",
		Short: "Show a stack (by name or id): settings, locks, run queue, environment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.GetStack(cmd.Context(), connect.NewRequest(&gantryv1.GetStackRequest{Stack: args[0]}))
			if err != nil {
				return fmt.Errorf("stack show: %w", err)
			}
			return g.printStack(cmd.OutOrStdout(), resp.Msg.GetStack())
		},
	}
}

func newStackLockCommand(g *globalOptions) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "lock STACK",
		Short: "Take a stack's manual lock: only you may trigger tracked runs and tasks until you unlock it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.LockStack(cmd.Context(), connect.NewRequest(&gantryv1.LockStackRequest{Stack: args[0], Note: note}))
			if err != nil {
				return fmt.Errorf("stack lock: %w", err)
			}
			return g.printStack(cmd.OutOrStdout(), resp.Msg.GetStack())
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why you lock it (shown to others)")
	return cmd
}

func newStackUnlockCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "unlock STACK",
		Short: "Release a stack's manual lock; the next queued run takes the run lock",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.UnlockStack(cmd.Context(), connect.NewRequest(&gantryv1.UnlockStackRequest{Stack: args[0], Force: force}))
			if err != nil {
				return fmt.Errorf("stack unlock: %w", err)
			}
			return g.printStack(cmd.OutOrStdout(), resp.Msg.GetStack())
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "release a lock someone else holds (administrators only)")
	return cmd
}

// printStack prints a stack as -o asks.
func (g *globalOptions) printStack(w io.Writer, s *gantryv1.Stack) error {
	if g.output == outputJSON {
		return writeJSON(w, s)
	}
	return writeStackTable(w, s)
}

// writeStackTable prints a stack's details, then its environment.
func writeStackTable(w io.Writer, s *gantryv1.Stack) error {
	t := newTable(w)
	t.row("id", s.GetId())
	t.row("name", s.GetName())
	t.row("description", s.GetDescription())
	t.row("repository", s.GetRepositoryUrl())
	t.row("branch", s.GetBranch())
	t.row("project root", s.GetProjectRoot())
	t.row("tool", toolName(s.GetTool()))
	t.row("worker pool", s.GetWorkerPoolId())
	t.row("vcs", s.GetVcsIntegrationId())
	t.row("runner image", s.GetRunnerImage())
	t.row("autodeploy", yesNo(s.GetAutodeploy()))
	t.row("managed state", yesNo(s.GetManagedState()))
	t.row("labels", strings.Join(s.GetLabels(), ", "))
	lock := ""
	if l := s.GetManualLock(); l != nil {
		lock = l.GetHolder() + " since " + formatTime(l.GetLockedAt())
		if l.GetNote() != "" {
			lock += ": " + l.GetNote()
		}
	}
	t.row("manual lock", lock)
	t.row("run lock", s.GetLockHolderRunId())
	t.row("queue", strings.Join(s.GetQueuedRunIds(), " "))
	t.row("created", formatTime(s.GetCreatedAt())+" by "+s.GetCreatedBy())
	t.row("updated", formatTime(s.GetUpdatedAt()))
	if err := t.flush(); err != nil {
		return err
	}
	if len(s.GetEnv()) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	env := newTable(w)
	env.row("ENV", "SCOPE", "VALUE")
	for _, v := range s.GetEnv() {
		value := v.GetValue()
		if v.GetSecret() {
			value = "(secret)"
		}
		env.row(v.GetKey(), enumName(v.GetScope().String(), "ENV_SCOPE_"), value)
	}
	return env.flush()
}

// toolName renders the tool as users type it.
func toolName(t gantryv1.Tool) string {
	return strings.ToLower(enumName(t.String(), "TOOL_"))
}
