package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/services/platform/pgserver"
	"github.com/gantryhq/gantry/services/platform/settings"
)

// DatabaseURLEnv names the variable that points the tests at an existing server instead of a
// private cluster. Its URL must allow CREATE DATABASE; it is used as the maintenance connection.
var DatabaseURLEnv = settings.TestDatabaseURL.Name

const (
	// clusterStartTimeout bounds starting the shared cluster, initdb included.
	clusterStartTimeout = 2 * time.Minute
	// statementTimeout bounds creating or dropping one test database.
	statementTimeout = 30 * time.Second
	// createAttempts bounds retries of CREATE DATABASE on a name already taken (another test
	// binary on a shared server, or a crashed earlier run) or a busy template.
	createAttempts = 20
)

// postgresEnv is the server the test binary's databases live on.
type postgresEnv struct {
	adminURL string
	// pool is one small pool for all CREATE and DROP DATABASE statements of the binary.
	pool *pgxpool.Pool
	// server and dir are set when the env runs its own cluster.
	server *pgserver.Server
	dir    string
	next   atomic.Int64
}

var shared struct {
	mu      sync.Mutex
	started bool
	env     *postgresEnv
	err     error
}

// sharedPostgres starts the binary's server on first use; every caller gets the same server, or
// the same error. The lock is held while the cluster starts, as every caller needs it anyway.
func sharedPostgres() (*postgresEnv, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
		defer cancel()
		if u := os.Getenv(DatabaseURLEnv); u != "" {
			shared.env, shared.err = newExternalEnv(ctx, u)
		} else {
			shared.env, shared.err = newClusterEnv(ctx)
		}
	}
	return shared.env, shared.err
}

// releasePostgres stops the shared server if one was started; later use starts a new one.
func releasePostgres() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	env := shared.env
	shared.started, shared.env, shared.err = false, nil, nil
	if env == nil {
		return nil
	}
	return env.close()
}

// newClusterEnv starts a throwaway, non-durable cluster in a new directory under os.TempDir().
func newClusterEnv(ctx context.Context) (*postgresEnv, error) {
	dir, err := os.MkdirTemp("", "gantry-testpg-")
	if err != nil {
		return nil, fmt.Errorf("create directory for the test cluster: %w", err)
	}
	// MkdirTemp makes it 0700; the cluster runs as an unprivileged account when we are root.
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("make %s traversable: %w", dir, err)
	}
	srv, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		_ = os.RemoveAll(dir)
		if errors.Is(err, pgserver.ErrBinariesNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("start the test cluster in %s: %w", dir, err)
	}
	env, err := newEnv(ctx, srv.URL("postgres"))
	if err != nil {
		_ = srv.Stop(ctx)
		_ = os.RemoveAll(dir)
		return nil, err
	}
	env.server, env.dir = srv, dir
	return env, nil
}

// newExternalEnv uses the server at adminURL.
func newExternalEnv(ctx context.Context, adminURL string) (*postgresEnv, error) {
	return newEnv(ctx, adminURL)
}

func newEnv(ctx context.Context, adminURL string) (*postgresEnv, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse test database URL: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the test database server: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the test database server at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &postgresEnv{adminURL: adminURL, pool: pool}, nil
}

func (e *postgresEnv) close() error {
	e.pool.Close()
	if e.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	err := e.server.Stop(ctx)
	if rmErr := os.RemoveAll(e.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove test cluster directory: %w", rmErr))
	}
	return err
}

// database creates a fresh database for t and drops it when t ends.
func (e *postgresEnv) database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	name, err := e.create(ctx, t.Name())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
		defer cancel()
		// FORCE ends sessions a test left open, such as a pool it did not close.
		if _, err := e.pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(e.adminURL, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return u
}

// create creates a database with the next free name for testName.
func (e *postgresEnv) create(ctx context.Context, testName string) (string, error) {
	var lastErr error
	for range createAttempts {
		name := databaseName(testName, e.next.Add(1))
		_, err := e.pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		if err == nil {
			return name, nil
		}
		lastErr = err
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
		switch pgErr.Code {
		case "42P04": // duplicate_database: try the next number
		case "55006": // object_in_use: someone is connected to template1; it passes
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("create database %s: %w", name, err)
			case <-time.After(50 * time.Millisecond):
			}
		default:
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return "", fmt.Errorf("create a database for %s after %d attempts: %w", testName, createAttempts, lastErr)
}

// withDatabase returns adminURL pointing at database name instead.
func withDatabase(adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("parse test database URL: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// Postgres returns the URL of a new, empty database for this test, dropped when the test ends.
// The cluster behind it is started on first use and shared by the test binary, or is the server
// at $GANTRY_TEST_DATABASE_URL. Safe for parallel tests.
func Postgres(t testing.TB) string {
	t.Helper()
	return postgres(t).database(t)
}

// PostgresAdminURL returns the URL of the maintenance database (postgres) on the server that
// Postgres uses, or $GANTRY_TEST_DATABASE_URL as given; for benchmarks and tools that manage
// their own databases.
func PostgresAdminURL(t testing.TB) string {
	t.Helper()
	return postgres(t).adminURL
}

func postgres(t testing.TB) *postgresEnv {
	t.Helper()
	env, err := sharedPostgres()
	if err != nil {
		t.Fatal(err.Error())
	}
	return env
}

// ClusterDir returns a new directory, removed after the test, in which a test
// can start a PostgreSQL cluster of its own (pgserver.Start): t.TempDir()
// makes 0700 directories, which the unprivileged account the cluster runs as
// under root cannot traverse.
func ClusterDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("cluster dir: %v", err)
		}
	}
	return filepath.Join(dir, "pg")
}

// DurablePostgres starts a durable cluster of the test's own (fsync on, as
// in production) with a database "bench", stopped after the test, and
// returns it. Benchmarks use it: the shared throwaway cluster runs with
// fsync off, which would flatter every write.
func DurablePostgres(t testing.TB) *pgserver.Server {
	t.Helper()
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Config{DataDir: ClusterDir(t), Durable: true,
		Settings: map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}})
	if err != nil {
		t.Fatalf("durable cluster: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	if err := srv.CreateDatabase(ctx, "bench"); err != nil {
		t.Fatalf("durable cluster: %v", err)
	}
	return srv
}
