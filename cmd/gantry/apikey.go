package main

import (
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newAPIKeyCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Manage API keys (administrators only)",
		Long: `Manage API keys. A key has a role: reader reads everything but secrets;
writer may also trigger, confirm, discard, stop and cancel runs, lock stacks and
set their environment; admin may do everything, worker pools and API keys
included. Callers using a key are recorded as "user:<name>".`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAPIKeyCreateCommand(g), newAPIKeyListCommand(g), newAPIKeyRevokeCommand(g))
	return cmd
}

// protoRoles maps the CLI's role names to the API's.
var protoRoles = map[apikey.Role]gantryv1.Role{
	apikey.RoleReader: gantryv1.Role_ROLE_READER,
	apikey.RoleWriter: gantryv1.Role_ROLE_WRITER,
	apikey.RoleAdmin:  gantryv1.Role_ROLE_ADMIN,
}

func newAPIKeyCreateCommand(g *globalOptions) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "create NAME --role admin|writer|reader",
		Short: "Create an API key; prints the key, once",
		Long: `Create an API key. The key is printed once: Gantry keeps only a hash of its
secret. Give it to "gantry login --key-file FILE" (or GANTRY_TOKEN) where it is
used.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := apikey.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			client, err := g.apiKeyClient()
			if err != nil {
				return err
			}
			resp, err := client.CreateApiKey(cmd.Context(), connect.NewRequest(&gantryv1.CreateApiKeyRequest{Name: args[0], Role: protoRoles[r]}))
			if err != nil {
				return fmt.Errorf("apikey create: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			if err := writeAPIKeyTable(w, resp.Msg.GetApiKey()); err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "\nAPI key (shown once; store it with gantry login --key-file, or set GANTRY_TOKEN to it):\n%s\n", resp.Msg.GetKey())
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "what the key may do: reader, writer or admin (required)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newAPIKeyListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the API keys that are not revoked, by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := g.apiKeyClient()
			if err != nil {
				return err
			}
			keys, err := allPages(func(token string) ([]*gantryv1.ApiKey, string, error) {
				resp, err := client.ListApiKeys(cmd.Context(), connect.NewRequest(&gantryv1.ListApiKeysRequest{PageSize: listPageSize, PageToken: token}))
				if err != nil {
					return nil, "", fmt.Errorf("apikey list: %w", err)
				}
				return resp.Msg.GetApiKeys(), resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			all := &gantryv1.ListApiKeysResponse{ApiKeys: keys}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, all)
			}
			t := newTable(w)
			t.row("NAME", "ROLE", "ID", "CREATED", "CREATED BY")
			for _, k := range keys {
				t.row(k.GetName(), roleName(k.GetRole()), k.GetId(), formatTime(k.GetCreatedAt()), k.GetCreatedBy())
			}
			return t.flush()
		},
	}
}

func newAPIKeyRevokeCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "Revoke an API key: every server refuses it, and its sessions, from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.apiKeyClient()
			if err != nil {
				return err
			}
			resp, err := client.RevokeApiKey(cmd.Context(), connect.NewRequest(&gantryv1.RevokeApiKeyRequest{ApiKey: args[0]}))
			if err != nil {
				return fmt.Errorf("apikey revoke: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			return writeAPIKeyTable(w, resp.Msg.GetApiKey())
		},
	}
}

// writeAPIKeyTable prints one key, field by field.
func writeAPIKeyTable(w io.Writer, k *gantryv1.ApiKey) error {
	t := newTable(w)
	t.row("id", k.GetId())
	t.row("name", k.GetName())
	t.row("role", roleName(k.GetRole()))
	t.row("created", formatTime(k.GetCreatedAt())+" by "+k.GetCreatedBy())
	if k.GetRevokedAt() != nil {
		t.row("revoked", formatTime(k.GetRevokedAt())+" by "+k.GetRevokedBy())
	}
	return t.flush()
}

// roleName is the CLI's name of an API role ("ROLE_WRITER" → "writer").
func roleName(r gantryv1.Role) string {
	for name, p := range protoRoles {
		if p == r {
			return string(name)
		}
	}
	return ""
}
