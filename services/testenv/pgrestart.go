package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/pgserver"
)

// OwnPostgres is a PostgreSQL cluster of one test's own, with one database, that the test can stop
// and start again on the same port and data: how tests check that Gantry waits out a database
// outage (the shared cluster of Postgres cannot be stopped under other tests).
type OwnPostgres struct {
	database string

	mu  sync.Mutex
	cfg pgserver.Config // Port is fixed once the first start picked it
	srv *pgserver.Server
	url string
}

// PostgresOfItsOwn starts a throwaway cluster for t with an empty database named database, and
// stops it when t ends.
func PostgresOfItsOwn(t testing.TB, database string) *OwnPostgres {
	t.Helper()
	p := &OwnPostgres{database: database, cfg: pgserver.Config{DataDir: ClusterDir(t)}}
	p.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	if err := p.srv.CreateDatabase(ctx, database); err != nil {
		t.Fatalf("testenv: create database %s: %v", database, err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.stopLocked(t)
	})
	return p
}

// URL is the database's URL; it stays the same across restarts.
func (p *OwnPostgres) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.url
}

// Stop shuts the cluster down (open sessions end); stopping a stopped cluster does nothing.
func (p *OwnPostgres) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked(t)
}

func (p *OwnPostgres) stopLocked(t testing.TB) {
	t.Helper()
	if p.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		t.Errorf("testenv: stop PostgreSQL: %v", err)
	}
	p.srv = nil
}

// Start starts the cluster again on the same port and data; starting a running cluster does
// nothing. The test fails if the port was taken meanwhile.
func (p *OwnPostgres) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	srv, err := pgserver.Start(ctx, p.cfg)
	if err != nil {
		t.Fatalf("testenv: start PostgreSQL: %v", err)
	}
	p.srv, p.cfg.Port, p.url = srv, srv.Port(), srv.URL(p.database)
}

// Outage stops the cluster for d and starts it again, returning when it accepts connections.
func (p *OwnPostgres) Outage(t testing.TB, d time.Duration) {
	t.Helper()
	p.Stop(t)
	time.Sleep(d) // the outage itself: its length is what the test is about
	p.Start(t)
}
