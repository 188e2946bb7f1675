package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
)

// maxKeyInput bounds what login reads as a key; a key is 100 bytes.
const maxKeyInput = 4 << 10

func newLoginCommand(g *globalOptions, getenv func(string) string) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "login --server URL [--key-file FILE]",
		Short: "Store an API key for the CLI, after checking it with the server",
		Long: `Store an API key for the CLI. The key is read from --key-file, or from
standard input (typed without echo on a terminal), checked by opening a session
with the server, and written with the server's URL to the CLI's credentials
file (GANTRY_CONFIG_DIR/credentials.json, or gantry/credentials.json in your
configuration directory; mode 0600). The key is never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateServerURL(g.server); err != nil {
				return err
			}
			base := strings.TrimRight(g.server, "/")
			key, err := readLoginKey(keyFile, cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			client := gantryv1connect.NewSessionServiceClient(httpClient, base)
			resp, err := client.CreateSession(cmd.Context(), connect.NewRequest(&gantryv1.CreateSessionRequest{ApiKey: key}))
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			path, err := credentialsPath(getenv)
			if err != nil {
				return err
			}
			if err := auth.SaveCredentials(path, auth.Credentials{Server: base, Token: key}); err != nil {
				return fmt.Errorf("login: %w", err)
			}
			k := resp.Msg.GetApiKey()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s with API key %s (%s, role %s); credentials saved in %s\n",
				base, k.GetName(), k.GetId(), roleName(k.GetRole()), path)
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the API key (default: read it from standard input)")
	return cmd
}

// readLoginKey reads the key from the file path, or else from in: on a
// terminal it prompts on prompt and reads without echo. Errors never quote
// what was read.
func readLoginKey(path string, in io.Reader, prompt io.Writer) (string, error) {
	var raw []byte
	var err error
	switch f, isFile := in.(*os.File); {
	case path != "":
		raw, err = readBounded(path)
		if err != nil {
			return "", fmt.Errorf("--key-file: %w", err)
		}
	case isFile && term.IsTerminal(int(f.Fd())):
		fmt.Fprint(prompt, "API key: ")
		raw, err = term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the API key: %w", err)
		}
	default:
		raw, err = io.ReadAll(io.LimitReader(in, maxKeyInput+1))
		if err != nil {
			return "", fmt.Errorf("read the API key from standard input: %w", err)
		}
	}
	key := strings.TrimSpace(string(raw))
	switch {
	case key == "":
		return "", errors.New("no API key given: pass --key-file FILE or write the key to standard input")
	case len(raw) > maxKeyInput || !apikey.LooksLikeKey(key):
		return "", errors.New("that is not an API key (ak_…_<64 hex digits>, as gantry apikey create prints it)")
	}
	return key, nil
}

// readBounded reads a small file whole.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxKeyInput+1))
}
