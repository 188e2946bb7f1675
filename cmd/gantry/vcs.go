package main

import (
	"fmt"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newVCSCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vcs",
		Short: "Connect GitHub and GitLab: integrations, their webhook deliveries",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newVCSAddCommand(g), newVCSListCommand(g), newVCSDeliveriesCommand(g), newVCSReplayCommand(g))
	return cmd
}

func newVCSAddCommand(g *globalOptions) *cobra.Command {
	var secretFile, apiURL, tokenFile, sshKeyFile string
	cmd := &cobra.Command{
		Use:   "add github|gitlab NAME --webhook-secret-file F",
		Short: "Add a GitHub or GitLab integration",
		Long: `Add an integration: point the provider's webhook at
<server>/webhooks/<github|gitlab>/NAME with the secret in --webhook-secret-file,
and tie stacks to it with gantry stack create --vcs NAME.

--api-url (default https://api.github.com or https://gitlab.com/api/v4) and
--token-file let Gantry report commit statuses and clone private repositories
over HTTPS; --ssh-key-file clones ssh:// repositories. Secrets are stored
encrypted and sent to workers sealed to their pool's key.`,
		Example: `  gantry vcs add github acme --webhook-secret-file hook.secret --token-file gh.token
  gantry vcs add gitlab corp --webhook-secret-file hook.secret --api-url https://git.corp.example/api/v4 --token-file gl.token`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var provider gantryv1.VCSProvider
			switch strings.ToLower(args[0]) {
			case "github":
				provider = gantryv1.VCSProvider_VCS_PROVIDER_GITHUB
			case "gitlab":
				provider = gantryv1.VCSProvider_VCS_PROVIDER_GITLAB
			default:
				return fmt.Errorf("provider %q: use github or gitlab", args[0])
			}
			secret, err := readSecretFile("--webhook-secret-file", secretFile, true)
			if err != nil {
				return err
			}
			token, err := readSecretFile("--token-file", tokenFile, false)
			if err != nil {
				return err
			}
			key, err := readSecretFile("--ssh-key-file", sshKeyFile, false)
			if err != nil {
				return err
			}
			client, err := g.vcsClient()
			if err != nil {
				return err
			}
			resp, err := client.AddVCSIntegration(cmd.Context(), connect.NewRequest(&gantryv1.AddVCSIntegrationRequest{
				Name: args[1], Provider: provider, ApiUrl: apiURL, WebhookSecret: secret, Token: token, SshKey: key,
			}))
			if err != nil {
				return fmt.Errorf("vcs add: %w", err)
			}
			i := resp.Msg.GetIntegration()
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), i)
			}
			t := newTable(cmd.OutOrStdout())
			t.row("id", i.GetId())
			t.row("name", i.GetName())
			t.row("api url", i.GetApiUrl())
			t.row("webhook", strings.TrimRight(g.server, "/")+i.GetWebhookPath())
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&secretFile, "webhook-secret-file", "", "file holding the webhook secret (required)")
	f.StringVar(&apiURL, "api-url", "", "the provider's API URL (default the public service's)")
	f.StringVar(&tokenFile, "token-file", "", "file holding an API token: commit statuses, HTTPS clones")
	f.StringVar(&sshKeyFile, "ssh-key-file", "", "file holding a PEM SSH private key: ssh:// clones")
	_ = cmd.MarkFlagRequired("webhook-secret-file")
	return cmd
}

// readSecretFile reads a secret from a file; a trailing newline is not
// part of it.
func readSecretFile(flag, path string, required bool) ([]byte, error) {
	if path == "" {
		if required {
			return nil, fmt.Errorf("%s: required", flag)
		}
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if flag != "--ssh-key-file" {
		b = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %s is empty", flag, path)
	}
	return b, nil
}

func newVCSListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List integrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := g.vcsClient()
			if err != nil {
				return err
			}
			resp, err := client.ListVCSIntegrations(cmd.Context(), connect.NewRequest(&gantryv1.ListVCSIntegrationsRequest{}))
			if err != nil {
				return fmt.Errorf("vcs list: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg)
			}
			t := newTable(cmd.OutOrStdout())
			t.row("ID", "NAME", "PROVIDER", "API URL", "TOKEN", "SSH KEY", "WEBHOOK")
			for _, i := range resp.Msg.GetIntegrations() {
				t.row(i.GetId(), i.GetName(), providerName(i.GetProvider()), i.GetApiUrl(), yesNo(i.GetHasToken()), yesNo(i.GetHasSshKey()), i.GetWebhookPath())
			}
			return t.flush()
		},
	}
}

func providerName(p gantryv1.VCSProvider) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "VCS_PROVIDER_"))
}

func newVCSDeliveriesCommand(g *globalOptions) *cobra.Command {
	var status string
	var limit int32
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List the newest webhook deliveries: what each queued, or why it was ignored or poisoned",
		Long: `List the newest webhook deliveries. A delivery is PENDING until a drain acts
on it, then HANDLED (its runs), IGNORED (with the reason) or POISONED (acting on
it kept failing; replay it with gantry vcs replay once the cause is fixed).`,
		Example: `  gantry vcs deliveries --status poisoned`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, ok := gantryv1.DeliveryStatus_value["DELIVERY_STATUS_"+strings.ToUpper(status)]
			if status == "" {
				st, ok = 0, true
			}
			if !ok {
				return fmt.Errorf("--status %q: use pending, handled, ignored or poisoned", status)
			}
			client, err := g.vcsClient()
			if err != nil {
				return err
			}
			resp, err := client.ListDeliveries(cmd.Context(), connect.NewRequest(&gantryv1.ListDeliveriesRequest{Status: gantryv1.DeliveryStatus(st), Limit: limit}))
			if err != nil {
				return fmt.Errorf("vcs deliveries: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg)
			}
			t := newTable(cmd.OutOrStdout())
			t.row("ID", "RECEIVED", "EVENT", "STATUS", "RUNS", "REASON")
			for _, d := range resp.Msg.GetDeliveries() {
				t.row(d.GetId(), formatTime(d.GetReceivedAt()), d.GetEvent(), strings.TrimPrefix(d.GetStatus().String(), "DELIVERY_STATUS_"),
					strings.Join(d.GetRunIds(), ","), d.GetReason())
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only deliveries in this status: pending, handled, ignored or poisoned")
	cmd.Flags().Int32Var(&limit, "limit", 0, "at most this many (default 50, at most 500)")
	return cmd
}

func newVCSReplayCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "replay DELIVERY",
		Short: "Act on a poisoned or ignored delivery again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.vcsClient()
			if err != nil {
				return err
			}
			resp, err := client.ReplayDelivery(cmd.Context(), connect.NewRequest(&gantryv1.ReplayDeliveryRequest{Delivery: args[0]}))
			if err != nil {
				return fmt.Errorf("vcs replay: %w", err)
			}
			if g.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), resp.Msg.GetDelivery())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "delivery %s is pending again\n", resp.Msg.GetDelivery().GetId())
			return nil
		},
	}
}
