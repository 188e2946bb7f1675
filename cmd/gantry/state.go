package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/statebackend"
)

func (g *globalOptions) stateClient() (gantryv1connect.StateServiceClient, error) {
	return newClient(g, gantryv1connect.NewStateServiceClient)
}

func newStateCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "List, download and roll back the managed Terraform state of stacks",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStateVersionsCommand(g), newStatePullCommand(g), newStateRollbackCommand(g))
	return cmd
}

func newStateVersionsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "versions STACK",
		Short: "List a stack's state versions, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stateClient()
			if err != nil {
				return err
			}
			resp, err := client.ListStateVersions(cmd.Context(), connect.NewRequest(&gantryv1.ListStateVersionsRequest{Stack: args[0]}))
			if err != nil {
				return fmt.Errorf("state versions: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			t := newTable(w)
			t.row("VERSION", "SERIAL", "TIME", "RUN", "SIZE", "SHA256", "KIND", "ACTOR")
			for _, v := range resp.Msg.GetVersions() {
				version := strconv.FormatInt(v.GetVersion(), 10)
				if v.GetCurrent() {
					version += "*"
				}
				kind := enumName(v.GetKind().String(), "STATE_VERSION_KIND_")
				if v.GetRolledBackFrom() != 0 {
					kind += " of " + strconv.FormatInt(v.GetRolledBackFrom(), 10)
				}
				t.row(version, strconv.FormatUint(v.GetSerial(), 10), formatTime(v.GetTime()), v.GetRunId(),
					strconv.FormatInt(v.GetSize(), 10), v.GetSha256(), kind, v.GetActor())
			}
			return t.flush()
		},
	}
}

func newStatePullCommand(g *globalOptions) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "pull STACK",
		Short: "Write a state version (default the current one) to standard output",
		Long: `Write the Terraform state JSON of a stack to standard output: the current
version, or --version N. Needs an administrator's token; every download is
recorded as a StateDownloaded event naming you.`,
		Example: `  gantry state pull network > network.tfstate
  gantry state pull network --version 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return fmt.Errorf("--version %d: versions start at 1 (0 or none for the current one)", version)
			}
			client, err := g.stateClient()
			if err != nil {
				return err
			}
			resp, err := client.DownloadState(cmd.Context(), connect.NewRequest(&gantryv1.DownloadStateRequest{Stack: args[0], Version: version}))
			if err != nil {
				return fmt.Errorf("state pull: %w", err)
			}
			if _, err := cmd.OutOrStdout().Write(resp.Msg.GetState()); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&version, "version", 0, "state version to download (default the current one)")
	return cmd
}

func newStateRollbackCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback STACK VERSION",
		Short: "Make an older state version current again (as a new version)",
		Long: `Store the content of state version VERSION as a new version of the stack's
state, recorded with you as its actor. Lock the stack first (gantry stack lock
STACK): a rollback is allowed only while you hold the stack's lock and no run
is in progress.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("version %q: give a version number (1, 2, ...) from gantry state versions", args[1])
			}
			client, err := g.stateClient()
			if err != nil {
				return err
			}
			resp, err := client.RollbackState(cmd.Context(), connect.NewRequest(&gantryv1.RollbackStateRequest{Stack: args[0], Version: n}))
			if err != nil {
				return fmt.Errorf("state rollback: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			v := resp.Msg.GetVersion()
			_, err = fmt.Fprintf(w, "state version %d restores version %d (serial %d, sha256 %s)\n",
				v.GetVersion(), v.GetRolledBackFrom(), v.GetSerial(), v.GetSha256())
			return err
		},
	}
}

// readStateFile reads a state file to import, refusing one larger than the
// server's default limit before sending it.
func readStateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--import-state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, statebackend.DefaultMaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("--import-state %s: %w", path, err)
	}
	if len(data) > statebackend.DefaultMaxStateSize {
		return nil, fmt.Errorf("--import-state %s: the file is larger than the limit of %d MiB", path, statebackend.DefaultMaxStateSize>>20)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("--import-state %s: the file is empty", path)
	}
	return data, nil
}
