package eventstore

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolSize is the connection pool size of a server process unless
// the database URL sets pool_max_conns. pgx's default (the number of CPUs,
// at least 4) is too small: the event watcher, the relay and the
// read-your-writes waiter each hold a connection for good, the projector
// needs two at a time, and every API call in flight one more.
const PoolSize = 32

// OpenPool connects a server process to the database at rawURL and checks,
// bounded, that it answers.
func OpenPool(ctx context.Context, rawURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if !setsPoolSize(rawURL) {
		cfg.MaxConns = PoolSize
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	return pool, nil
}

// setsPoolSize reports whether a database URL (or key=value DSN) chooses
// the pool size itself.
func setsPoolSize(rawURL string) bool {
	if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" {
		return u.Query().Has("pool_max_conns")
	}
	return strings.Contains(rawURL, "pool_max_conns=")
}
