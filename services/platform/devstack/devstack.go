// Package devstack provides Gantry's embedded defaults: with no
// configuration it starts a private PostgreSQL cluster, an embedded NATS
// server with JetStream and a file:// bucket, all under one data directory.
// Each can be replaced by an external one through its URL.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/platform/pgserver"
)

// Config says where the embedded parts live and which external ones replace them.
type Config struct {
	// DataDir holds the private cluster, NATS's storage and the bucket (default ./.gantry).
	DataDir string
	// DatabaseURL, when set, replaces the private PostgreSQL cluster.
	DatabaseURL string
	// NATSURL, when set, replaces the embedded NATS server.
	NATSURL string
	// NATSListen is the embedded NATS server's address (default 127.0.0.1:1984).
	NATSListen string
	// BlobURL, when set, replaces the file:// bucket in the data directory.
	BlobURL string
	Logger  *slog.Logger
}

// Database is the name of the database Gantry uses in its private cluster.
const Database = "gantry"

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = ".gantry"
	}
	if c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:1984"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stack is the running infrastructure.
type Stack struct {
	DatabaseURL string
	NATSURL     string
	BlobURL     string
	Pool        *pgxpool.Pool
	Bus         *bus.Bus

	// Where each part is, for the start-up banner: one line per component.
	Components []Component

	pg  *pgserver.Server
	log *slog.Logger
}

// Component describes one started part for the banner.
type Component struct {
	Name  string
	Where string
}

// Start brings up every part that has no external URL. On error, whatever
// was started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	cfg.defaults()
	s := &Stack{log: cfg.Logger}
	defer func() {
		if err != nil {
			s.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}

	s.DatabaseURL = cfg.DatabaseURL
	if s.DatabaseURL == "" {
		dir := filepath.Join(dataDir, "postgres")
		s.pg, err = pgserver.Start(ctx, pgserver.Config{DataDir: dir, Durable: true, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		if err := ensureDatabase(ctx, s.pg, Database); err != nil {
			return nil, err
		}
		s.DatabaseURL = s.pg.URL(Database)
		s.Components = append(s.Components, Component{"postgres", s.DatabaseURL + " (private cluster in " + dir + ")"})
	} else {
		s.Components = append(s.Components, Component{"postgres", redact(s.DatabaseURL) + " (external)"})
	}
	s.Pool, err = eventstore.OpenPool(ctx, s.DatabaseURL)
	if err != nil {
		return nil, err
	}

	busCfg := bus.Config{URL: cfg.NATSURL, Listen: cfg.NATSListen, StoreDir: filepath.Join(dataDir, "nats"), Logger: cfg.Logger}
	if cfg.NATSURL != "" {
		busCfg.StoreDir = ""
	}
	s.Bus, err = bus.Start(ctx, busCfg)
	if err != nil {
		return nil, err
	}
	s.NATSURL = s.Bus.URL()
	if cfg.NATSURL == "" {
		s.Components = append(s.Components, Component{"nats", s.NATSURL + " (embedded, JetStream in " + busCfg.StoreDir + ")"})
	} else {
		s.Components = append(s.Components, Component{"nats", redact(s.NATSURL) + " (external)"})
	}

	s.BlobURL = cfg.BlobURL
	where := " (external)"
	if s.BlobURL == "" {
		if s.BlobURL, err = objstore.FileURL(filepath.Join(dataDir, "blobs")); err != nil {
			return nil, err
		}
		where = ""
	}
	b, err := objstore.Open(ctx, s.BlobURL)
	if err != nil && cfg.BlobURL != "" {
		return nil, fmt.Errorf("GANTRY_BLOB_URL: %w", err)
	}
	if err != nil {
		return nil, err
	}
	b.Close()
	s.Components = append(s.Components, Component{"blob", redact(s.BlobURL) + where})
	return s, nil
}

// Stop stops what Start started, in reverse order, within ctx.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	if s.Bus != nil {
		s.Bus.Shutdown()
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
	if s.pg != nil {
		if err := s.pg.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureDatabase creates name in the private cluster on first start.
func ensureDatabase(ctx context.Context, pg *pgserver.Server, name string) error {
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the private cluster: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	return pg.CreateDatabase(ctx, name)
}

// redact hides a password in a URL for printing.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
