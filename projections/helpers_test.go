package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/testenv"
)

// env is one migrated test database with a store and queries on it.
type env struct {
	url   string
	pool  *pgxpool.Pool
	store *eventstore.Store
	q     *projections.Queries
	nats  *testenv.NATSServer
}

// newEnv creates a fresh, migrated database.
func newEnv(t testing.TB) *env {
	t.Helper()
	url := testenv.Postgres(t)
	pool := openPool(t, url)
	if _, err := eventstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return &env{url: url, pool: pool, store: newStore(t, pool), q: projections.NewQueries(pool)}
}

func openPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newStore(t testing.TB, pool *pgxpool.Pool) *eventstore.Store {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(pool, reg)
	t.Cleanup(s.Close)
	return s
}

// appendSteps appends each step atomically, in order, and returns the
// cursor of the last event.
func appendSteps(t testing.TB, s *eventstore.Store, steps [][]eventstore.Batch) eventstore.Cursor {
	t.Helper()
	c, err := appendStepsErr(context.Background(), s, steps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func appendStepsErr(ctx context.Context, s *eventstore.Store, steps [][]eventstore.Batch) (eventstore.Cursor, error) {
	var last eventstore.Cursor
	for _, step := range steps {
		out, err := s.AppendAll(ctx, step...)
		if err != nil {
			return last, err
		}
		for _, evs := range out {
			for _, e := range evs {
				if last.Before(e.Cursor()) {
					last = e.Cursor()
				}
			}
		}
	}
	return last, nil
}

// record plays f on a new sim and returns its steps, failing the test if
// the domain refused a command.
func record(t testing.TB, s *sim, f func()) [][]eventstore.Batch {
	t.Helper()
	f()
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.take()
}

// natsServer returns the env's embedded NATS server, started on first use.
func (e *env) natsServer(t testing.TB) *testenv.NATSServer {
	t.Helper()
	if e.nats == nil {
		e.nats = testenv.NATS(t)
	}
	return e.nats
}

// connect opens a NATS connection closed when the test ends.
func (e *env) connect(t testing.TB, name string) *nats.Conn {
	t.Helper()
	nc := e.natsServer(t).Connect(t, name)
	return nc
}

// projector returns a projector on the env that is not running.
func (e *env) projector(t testing.TB, cfg projections.Config) *projections.Projector {
	t.Helper()
	if cfg.Pool == nil {
		cfg.Pool = e.pool
	}
	if cfg.Store == nil {
		cfg.Store = e.store
	}
	if cfg.NATS == nil {
		cfg.NATS = e.connect(t, "projector-test")
	}
	p, err := projections.NewProjector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// background runs p until the test ends.
func background(t testing.TB, p interface{ Run(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// startRelay publishes the env's events to its NATS server until the test ends.
func (e *env) startRelay(t testing.TB) {
	t.Helper()
	r, err := eventstore.NewRelay(e.pool, e.connect(t, "relay-test"), eventstore.RelayConfig{PollInterval: 200 * time.Millisecond, BatchSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	background(t, r)
}

// catchUp brings every projection to the store's head once.
func catchUp(t testing.TB, e *env) {
	t.Helper()
	if err := e.projector(t, projections.Config{}).CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// checksums returns an md5 of every row of every rm_ table, by table.
func checksums(t testing.TB, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name LIKE 'rm\_%' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 7 {
		t.Fatalf("only %d rm_ tables: %v", len(tables), tables)
	}
	out := map[string]string{}
	for _, table := range tables {
		var sum string
		var n int
		err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), ''), count(*) FROM %s t`, table)).Scan(&sum, &n)
		if err != nil {
			t.Fatal(err)
		}
		out[table] = fmt.Sprintf("%s (%d rows)", sum, n)
	}
	return out
}

func sameChecksums(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	for table, w := range want {
		if got[table] != w {
			t.Errorf("%s: %s is %s, want %s", what, table, got[table], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d tables, want %d", what, len(got), len(want))
	}
}

// checkpoint returns the cursor of a projection's checkpoint (zero if none).
func checkpoint(t testing.TB, pool *pgxpool.Pool, name string) eventstore.Cursor {
	t.Helper()
	var c eventstore.Cursor
	err := pool.QueryRow(context.Background(), "SELECT tx_id, position FROM checkpoints WHERE name = $1", projections.CheckpointName(name)).Scan(&c.Tx, &c.Position)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return c
}

// logBuffer collects JSON log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
