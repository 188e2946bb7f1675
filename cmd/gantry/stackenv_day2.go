package main

import (
	"fmt"
	"io"
	"os"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/domain/stack"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

func (g *globalOptions) stackEnvClient() (gantryv1connect.StackEnvServiceClient, error) {
	return newClient(g, gantryv1connect.NewStackEnvServiceClient)
}

func newStackEnvListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list STACK",
		Short: "List a stack's environment variables and mounted files (secret values and file contents hidden)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.stackEnvClient()
			if err != nil {
				return err
			}
			resp, err := client.ListStackEnv(cmd.Context(), connect.NewRequest(&gantryv1.ListStackEnvRequest{Stack: args[0]}))
			if err != nil {
				return fmt.Errorf("stack env list: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			t := newTable(w)
			t.row("KEY", "TYPE", "SCOPE", "VALUE")
			for _, v := range resp.Msg.GetEnv() {
				kind, value := "variable", v.GetValue()
				if v.GetSecret() {
					kind, value = "secret", "(secret)"
				}
				t.row(v.GetKey(), kind, enumName(v.GetScope().String(), "ENV_SCOPE_"), value)
			}
			for _, f := range resp.Msg.GetFiles() {
				t.row(f.GetPath(), "file", "ALL", fmt.Sprintf("(%d bytes, mounted %s)", f.GetSize(), formatTime(f.GetUpdatedAt())))
			}
			return t.flush()
		},
	}
}

func newStackEnvMountCommand(g *globalOptions) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "mount STACK PATH --file FILE",
		Short: "Mount a file into the workspace of a stack's runs, at PATH in the project root",
		Long: `Mount the content of FILE (- reads standard input) at PATH, relative to the
project root, in the workspace of every run of the stack, written before
terraform init; a file of that name from the repository is replaced. PATH must
stay inside the project root: no absolute path, no "..".

The content is encrypted like a secret variable's value, goes to workers sealed
to their pool's key, and no command shows it again; stack env list shows its
size. At most 128 KiB. gantry stack env delete STACK PATH removes it. A command
of the run that prints the file prints it in the log: it is not masked.`,
		Example: `  gantry stack env mount network config/kubeconfig --file ~/.kube/config
  vault read -field=netrc secret/ci | gantry stack env mount network .netrc --file -`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			content, err := readMountFile(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			client, err := g.stackEnvClient()
			if err != nil {
				return err
			}
			resp, err := client.MountStackFile(cmd.Context(), connect.NewRequest(&gantryv1.MountStackFileRequest{
				Stack: args[0], Path: args[1], Content: content,
			}))
			if err != nil {
				return fmt.Errorf("stack env mount: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			f := resp.Msg.GetFile()
			_, err = fmt.Fprintf(w, "mounted %s on stack %s (%d bytes)\n", f.GetPath(), args[0], f.GetSize())
			return err
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the file to mount; - reads standard input (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readMountFile reads the --file of stack env mount, refusing one larger
// than a mounted file may be before sending it.
func readMountFile(stdin io.Reader, path string) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, stack.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("--file %s: %w", path, err)
	}
	if len(data) > stack.MaxFileSize {
		return nil, fmt.Errorf("--file %s: larger than %d KiB, the limit of a mounted file", path, stack.MaxFileSize>>10)
	}
	return data, nil
}
