package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestOwnPostgresRestartKeepsDataAndPoolsReconnect(t *testing.T) {
	t.Parallel()
	pg := PostgresOfItsOwn(t, "outage")
	url := pg.URL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	pg.Stop(t)
	pg.Stop(t)
	if _, err := pool.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a query succeeded while PostgreSQL was stopped")
	}
	pg.Start(t)
	if pg.URL() != url {
		t.Fatalf("URL changed across the restart: %s -> %s", url, pg.URL())
	}
	var v int
	if err := pool.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 1 {
		t.Fatalf("after the restart: %d, %v", v, err)
	}
}
