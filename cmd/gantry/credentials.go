package main

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/settings"
)

// credentialsPath is where the CLI keeps its credentials and `gantry dev`
// writes the admin token: $GANTRY_CONFIG_DIR/credentials.json, else the
// user's configuration directory (see auth.DefaultCredentialsPath).
func credentialsPath(getenv func(string) string) (string, error) {
	if dir, ok := settings.ConfigDir.Lookup(getenv); ok {
		return filepath.Join(dir, "credentials.json"), nil
	}
	return auth.DefaultCredentialsPath()
}

// useCredentialsFile fills what neither a flag nor the environment gave
// from the credentials file: the token, and the server (the one the file's
// token belongs to, and the one a user of `gantry dev` works with). A
// missing file is fine (calls then go without a token); a broken one is
// reported when a command needs the token, so that commands that talk to
// no server keep working.
func (g *globalOptions) useCredentialsFile(cmd *cobra.Command, getenv func(string) string) {
	needToken := g.token == ""
	_, serverSet := settings.Server.Lookup(getenv)
	needServer := !cmd.Flags().Changed("server") && !serverSet
	if !needToken && !needServer {
		return
	}
	path, err := credentialsPath(getenv)
	if err == nil {
		g.credentialsFile = path
		var c auth.Credentials
		if c, err = auth.LoadCredentials(path); err == nil {
			if needToken {
				g.token = c.Token
			}
			if needServer {
				g.server = c.Server
			}
			return
		}
	}
	if needToken && !errors.Is(err, fs.ErrNotExist) {
		g.credentialsErr = err
	}
}
