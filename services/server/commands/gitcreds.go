package commands

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// WithCredentials returns a resolver that reads a private repository with
// c, as a worker clones it: a token as an Authorization header given to
// git as configuration through its environment (never on its command
// line), an SSH key from a file of its own that cleanup removes.
func (g GitResolver) WithCredentials(c protocol.GitCredentials) (GitResolver, func(), error) {
	cleanup := func() {}
	env := append([]string(nil), g.Env...)
	if c.Password != "" {
		basic := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	}
	if c.SSHKey != "" {
		dir, err := os.MkdirTemp("", "gantry-ssh-")
		if err != nil {
			return g, cleanup, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		key := filepath.Join(dir, "id")
		if err := os.WriteFile(key, []byte(strings.TrimRight(c.SSHKey, "\n")+"\n"), 0o600); err != nil {
			cleanup()
			return g, func() {}, err
		}
		env = append(env, "GIT_SSH_COMMAND=ssh -i '"+key+"' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new")
	}
	g.Env = env
	return g, cleanup, nil
}
