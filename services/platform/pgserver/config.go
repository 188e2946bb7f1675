package pgserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"regexp"
)

// Config describes a private cluster. The zero value is not usable: DataDir is required.
type Config struct {
	// DataDir holds the cluster; it is created and initialised when it has no PG_VERSION, and
	// reused as it is otherwise.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// BinDir holds initdb and postgres; "" means FindBinaries.
	BinDir string
	// Durable keeps PostgreSQL's crash safety. Throwaway test clusters leave it false, which turns
	// off fsync, synchronous_commit and full_page_writes: much faster, and a crash loses the data.
	Durable bool
	// Settings are extra server settings (postgresql.conf names); they override the defaults.
	Settings map[string]string
	// Logger receives what Start and Stop do; nil discards.
	Logger *slog.Logger
}

// settingName matches postgresql.conf parameter names, including custom "ext.name" ones.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// managedSettings are chosen by Start because the URL it hands out and its readiness check
// depend on them.
var managedSettings = map[string]bool{"port": true, "listen_addresses": true, "unix_socket_directories": true}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range 0-65535", c.Port))
	}
	if c.BinDir != "" && !hasBinaries(c.BinDir) {
		errs = append(errs, fmt.Errorf("bin dir %s lacks initdb, postgres or pg_ctl: %w", c.BinDir, ErrBinariesNotFound))
	}
	for name := range c.Settings {
		switch {
		case !settingName.MatchString(name):
			errs = append(errs, fmt.Errorf("setting %q is not a valid parameter name", name))
		case managedSettings[name]:
			errs = append(errs, fmt.Errorf("setting %q is managed by pgserver; it is not configurable", name))
		}
	}
	return errors.Join(errs...)
}

// withDefaults resolves the binary directory, makes the data dir absolute (the server runs with
// its own working directory) and fills in the logger.
func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.BinDir == "" {
		dir, err := FindBinaries()
		if err != nil {
			return c, err
		}
		c.BinDir = dir
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, fmt.Errorf("resolve data dir %s: %w", c.DataDir, err)
	}
	c.DataDir = abs
	return c, nil
}

// serverSettings returns the settings postgres is started with: sizing for many test pools, the
// durability trade-off, then the caller's overrides.
func (c Config) serverSettings(socketDir string) map[string]string {
	s := map[string]string{
		// Every test opens its own pool; the default of 100 runs out under parallel tests.
		"max_connections": "200",
		"shared_buffers":  "128MB",
	}
	if !c.Durable {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
	}
	maps.Copy(s, c.Settings)
	s["listen_addresses"] = "127.0.0.1"
	s["unix_socket_directories"] = socketDir
	return s
}
