package executor

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// gitCredentialEnv adds the job's git credentials to git's environment
// env: over HTTP(S) an Authorization header given as configuration through
// the environment (GIT_CONFIG_COUNT/KEY/VALUE), so it is in no command
// line, no log and not in the clone's .git/config; over SSH a key file in a
// directory of its own outside the workspace, named by GIT_SSH_COMMAND.
// cleanup removes the key file.
func (x *execution) gitCredentialEnv(env []string) (out []string, cleanup func(), err error) {
	c := x.job.Git
	cleanup = func() {}
	if c == nil {
		return env, cleanup, nil
	}
	out = env
	if c.Password != "" {
		user := c.Username
		if user == "" {
			user = "x-access-token"
		}
		basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + c.Password))
		out = append(out, configEnv(out, "http.extraHeader", "Authorization: Basic "+basic)...)
	}
	if c.SSHKey != "" {
		dir, err := os.MkdirTemp("", "gantry-ssh-")
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		key := filepath.Join(dir, "id")
		if err := os.WriteFile(key, []byte(strings.TrimRight(c.SSHKey, "\n")+"\n"), 0o600); err != nil {
			cleanup()
			return nil, func() {}, err
		}
		out = append(out, "GIT_SSH_COMMAND=ssh -i "+shellQuote(key)+" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new")
	}
	return out, cleanup, nil
}

// configEnv returns the variables that add git configuration key=value
// after any GIT_CONFIG_COUNT already in env.
func configEnv(env []string, key, value string) []string {
	n := 0
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GIT_CONFIG_COUNT="); ok {
			n, _ = strconv.Atoi(v)
		}
	}
	return []string{
		"GIT_CONFIG_COUNT=" + strconv.Itoa(n+1),
		fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", n, key),
		fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", n, value),
	}
}

// gitSecretValues are what the job's logs must never show of its git
// credentials.
func gitSecretValues(c *protocol.GitCredentials) []string {
	if c == nil || c.Password == "" {
		return nil
	}
	user := c.Username
	if user == "" {
		user = "x-access-token"
	}
	return []string{c.Password, base64.StdEncoding.EncodeToString([]byte(user + ":" + c.Password))}
}
