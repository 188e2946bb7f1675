package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/settings"
)

// Output formats for -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// globalOptions holds the root's persistent flags, resolved against the
// environment before any command runs.
type globalOptions struct {
	server string
	token  string
	output string
	// credentialsErr is why the credentials file could not be used.
	credentialsErr error
	// bearer authenticates the process's API clients (clientOptions).
	bearer *bearer
	// credentialsFile is where the credentials file is looked for.
	credentialsFile string
	// noColor: NO_COLOR is set, so no output gets ANSI colour.
	noColor bool
}

func newRootCommand(getenv func(string) string) *cobra.Command {
	root, _ := newCLI(getenv)
	return root
}

// newCLI returns the root command and the global options its commands
// resolve, which run needs to explain errors.
func newCLI(getenv func(string) string) (*cobra.Command, *globalOptions) {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "gantry",
		Short: "Gantry orchestrates Terraform and OpenTofu runs on your own workers",
		// --version prints one line; `gantry version` prints the details.
		Version: versionLine(),
		// Errors are printed once, by run, as "gantry: <message>".
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkEnvironment(cmd, getenv); err != nil {
				return err
			}
			return g.resolve(cmd, getenv)
		},
	}
	flags := root.PersistentFlags()
	flags.StringVar(&g.server, "server", settings.Server.Default, "Gantry server URL (env GANTRY_SERVER)")
	flags.StringVar(&g.token, "token", "", "API key (or session token) to call the server with (env GANTRY_TOKEN)")
	flags.StringVarP(&g.output, "output", "o", outputTable, "output format: table or json")

	root.AddCommand(newStackCommand(g), newRunCommand(g), newTaskCommand(g), newPoolCommand(g), newStateCommand(g),
		newEventsCommand(g), newVersionCommand(g), newDevCommand(getenv), newServerCommand(getenv), newProjectorCommand(getenv), newSchedulerCommand(getenv),
		newMigrateCommand(getenv), newLauncherCommand(getenv), newRunnerImageCommand(getenv), newVCSCommand(g), newDrainCommand(getenv), newAPIKeyCommand(g), newLoginCommand(g, getenv))
	root.SetVersionTemplate("gantry {{.Version}}\n")
	addEnvironmentHelp(root)
	checkUsage(root)
	return root, g
}

// resolve fills flags the user did not set from the environment, then from
// the credentials file, and validates the result. A flag on the command
// line wins over the environment, which wins over the credentials file,
// which wins over the default.
func (g *globalOptions) resolve(cmd *cobra.Command, getenv func(string) string) error {
	flags := cmd.Flags()
	if v, ok := settings.Server.Lookup(getenv); ok && !flags.Changed("server") {
		g.server = v
	}
	if v, ok := settings.Token.Lookup(getenv); ok && !flags.Changed("token") {
		g.token = v
	}
	_, g.noColor = settings.NoColor.Lookup(getenv)
	g.useCredentialsFile(cmd, getenv)
	if g.output != outputTable && g.output != outputJSON {
		return fmt.Errorf("--output %q: use %s or %s", g.output, outputTable, outputJSON)
	}
	return nil
}

func validateServerURL(raw string) error {
	if raw != "" && !strings.Contains(raw, "://") {
		// "127.0.0.1:1983" does not even parse, and "localhost:1983"
		// parses with "localhost" as its scheme: say what is meant.
		return fmt.Errorf("--server %q: the URL has no scheme: use http://%s (or https://%s)", raw, raw, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--server %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("--server %q: want an http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("--server %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("--server %q: want scheme, host and optional path only", raw)
	}
	return nil
}

// baseURL validates the server URL and returns it without a trailing slash.
// Only commands that talk to the server call it, so a bad GANTRY_SERVER
// does not break, say, version.
func (g *globalOptions) baseURL() (string, error) {
	if g.credentialsErr != nil {
		return "", fmt.Errorf("no --token or GANTRY_TOKEN, and the credentials file cannot be used: %w; "+
			"fix or remove it, or pass --token or set GANTRY_TOKEN", g.credentialsErr)
	}
	if err := validateServerURL(g.server); err != nil {
		return "", err
	}
	return strings.TrimRight(g.server, "/"), nil
}
