package main

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newStackEnvCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "List, set or delete a stack's environment variables, and mount files",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStackEnvSetCommand(g), newStackEnvDeleteCommand(g))
	cmd.AddCommand(newStackEnvListCommand(g), newStackEnvMountCommand(g))
	return cmd
}

// maxEnvValueFromStdin bounds a value read from standard input.
const maxEnvValueFromStdin = 64 << 10

func newStackEnvSetCommand(g *globalOptions) *cobra.Command {
	var secret bool
	cmd := &cobra.Command{
		Use:   "set STACK KEY VALUE",
		Short: "Set an environment variable of a stack's runs",
		Long: `Set an environment variable of a stack's runs. A ro_ prefix passes it to
read-only phases only (planning, proposed runs), wo_ to write phases only.

With --secret the value is encrypted before it is stored and no command ever
shows it again. A VALUE of - reads the value from standard input (a trailing
newline is dropped), which keeps secrets out of the shell history.`,
		Example: `  gantry stack env set network TF_LOG info
  gantry stack env set network wo_AWS_SECRET_ACCESS_KEY - --secret < aws-secret.txt`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := args[2]
			if value == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxEnvValueFromStdin+1))
				if err != nil {
					return fmt.Errorf("read the value from standard input: %w", err)
				}
				if len(b) > maxEnvValueFromStdin {
					return fmt.Errorf("the value on standard input is longer than %d bytes", maxEnvValueFromStdin)
				}
				value = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			}
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.SetStackEnv(cmd.Context(), connect.NewRequest(&gantryv1.SetStackEnvRequest{
				Stack: args[0], Key: args[1], Value: value, Secret: secret,
			}))
			if err != nil {
				return fmt.Errorf("stack env set: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			v := resp.Msg.GetEnv()
			kind := "plain"
			if v.GetSecret() {
				kind = "secret"
			}
			_, err = fmt.Fprintf(w, "set %s variable %s on stack %s (scope %s)\n", kind, v.GetKey(), args[0], enumName(v.GetScope().String(), "ENV_SCOPE_"))
			return err
		},
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "store the value encrypted and never show it")
	return cmd
}

func newStackEnvDeleteCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete STACK KEY",
		Short: "Delete an environment variable of a stack, or a mounted file by its path",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stackClient()
			if err != nil {
				return err
			}
			resp, err := client.DeleteStackEnv(cmd.Context(), connect.NewRequest(&gantryv1.DeleteStackEnvRequest{Stack: args[0], Key: args[1]}))
			if err != nil {
				return fmt.Errorf("stack env delete: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			_, err = fmt.Fprintf(w, "deleted variable %s of stack %s\n", args[1], args[0])
			return err
		},
	}
}
