package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantryhq/gantry/services/platform/privatefile"
	"github.com/gantryhq/gantry/services/platform/settings"
)

// ConfigDirEnv names the variable that moves the CLI's configuration
// directory (tests, several installations side by side).
var ConfigDirEnv = settings.ConfigDir.Name

// Credentials are what the CLI keeps to reach a server: its URL and a
// bearer token. String and LogValue leave the token out.
type Credentials struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// String describes the credentials without the token.
func (c Credentials) String() string { return "credentials for " + c.Server }

// LogValue logs the credentials without the token.
func (c Credentials) LogValue() slog.Value { return slog.GroupValue(slog.String("server", c.Server)) }

// DefaultCredentialsPath returns where the CLI keeps its credentials:
// $GANTRY_CONFIG_DIR/credentials.json if that is set, otherwise
// credentials.json in gantry under the user's configuration directory
// (os.UserConfigDir). It is the one place outside cmd/ that reads the
// environment, so that `gantry dev` and the CLI agree on the default.
func DefaultCredentialsPath() (string, error) {
	if dir, ok := settings.ConfigDir.Lookup(os.Getenv); ok {
		return filepath.Join(dir, "credentials.json"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("credentials path: set %s: %w", ConfigDirEnv, err)
	}
	return filepath.Join(dir, "gantry", "credentials.json"), nil
}

// LoadCredentials reads the credentials file at path. A missing file is an
// error matching fs.ErrNotExist.
func LoadCredentials(path string) (Credentials, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("read credentials: %w", err)
	}
	return parseCredentials(path, raw)
}

// parseCredentials decodes a credentials file's content; errors never
// quote it, since it holds a token.
func parseCredentials(path string, raw []byte) (Credentials, error) {
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return Credentials{}, fmt.Errorf("credentials file %s: not a JSON object with server and token", path)
	}
	var missing []string
	if strings.TrimSpace(c.Server) == "" {
		missing = append(missing, "server")
	}
	if strings.TrimSpace(c.Token) == "" {
		missing = append(missing, "token")
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("credentials file %s: missing %s", path, strings.Join(missing, " and "))
	}
	return c, nil
}

// SaveCredentials writes c to path (mode 0600; missing parent directories
// are made 0700). The file is replaced atomically, so a reader never sees
// half of it.
func SaveCredentials(path string, c Credentials) error {
	if strings.TrimSpace(c.Server) == "" || strings.TrimSpace(c.Token) == "" {
		return errors.New("save credentials: server and token must be set")
	}
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := privatefile.Replace(path, append(raw, '\n')); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// SaveAPIKey writes key and a newline to path, as SaveCredentials writes
// its file: the file `gantry server --admin-key-file` leaves for the
// operator, who hands it to `gantry login --key-file`.
func SaveAPIKey(path, key string) error {
	if strings.TrimSpace(key) == "" {
		return errors.New("save API key: no key")
	}
	if err := privatefile.Replace(path, []byte(key+"\n")); err != nil {
		return fmt.Errorf("save API key: %w", err)
	}
	return nil
}
