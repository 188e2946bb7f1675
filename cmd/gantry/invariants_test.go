package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// checkInvariants asserts what no outage, kill or reset may break: no
// stack lock is held by a run that ended, every stream's events are
// contiguous (versions 1 to n) with no event twice, and the read models
// equal what a rebuild from the events makes. Callers check the runs' own
// outcomes.
func (s *testServer) checkInvariants(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var broken []string
	rows, err := s.pool.Query(ctx, `SELECT stream_id FROM events GROUP BY stream_id
		HAVING min(version) <> 1 OR max(version) <> count(*) OR count(DISTINCT version) <> count(*) OR count(DISTINCT event_id) <> count(*)`)
	if err != nil {
		t.Fatal(err)
	}
	if broken, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(broken) > 0 {
		t.Errorf("streams whose events are not contiguous, or repeat one: %v", broken)
	}

	aggs := testenv.Aggregates(t, s.store)
	rows, err = s.pool.Query(ctx, `SELECT DISTINCT stream_id FROM events WHERE stream_type = 'stack'`)
	if err != nil {
		t.Fatal(err)
	}
	stacks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range stacks {
		st, err := aggregate.Load(ctx, aggs, aggregate.Stack, id)
		if err != nil {
			t.Fatal(err)
		}
		holder := st.LockHolder()
		if holder == "" || !strings.HasPrefix(holder, "run_") {
			continue
		}
		r, err := aggregate.Load(ctx, aggs, aggregate.Run, holder)
		if err != nil {
			t.Fatal(err)
		}
		if r.IsTerminal() {
			t.Errorf("stack %s is locked by run %s, which ended %s", id, holder, r.Status())
		}
	}

	before := s.readModels(t)
	if _, err := s.cliEnv(t, map[string]string{"GANTRY_DATABASE_URL": s.dbURL, "GANTRY_LOG_LEVEL": "error"}, "projector", "rebuild"); err != nil {
		t.Fatal(err)
	}
	if after := s.readModels(t); after != before {
		t.Errorf("the read models differ from a rebuild:\nrebuilt:\n%s\nbefore:\n%s", after, before)
	}
}

// readModels is the text of every read model table, in a stable order.
func (s *testServer) readModels(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	rows, err := s.pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name LIKE 'rm\_%' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		var text string
		q := fmt.Sprintf(`SELECT coalesce(string_agg(r::text, E'\n' ORDER BY r::text), '') FROM %s r`, pgx.Identifier{table}.Sanitize())
		if err := s.pool.QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", table, text)
	}
	return b.String()
}

// gate is a pair of files a run's hook or provisioner synchronises with the
// test through: the run says it reached a point (reached), then waits until
// the test lets it go on (open).
type gate struct{ dir string }

func newGate(t *testing.T) gate {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return gate{dir: dir}
}

// wait is the shell command that marks the gate reached and waits for it
// to open.
func (g gate) wait() string {
	return fmt.Sprintf("touch %s/reached; while [ ! -f %s/open ]; do sleep 0.2; done", g.dir, g.dir)
}

// reached waits until a run came to the gate.
func (g gate) reached(t *testing.T, within time.Duration, what string) {
	t.Helper()
	await.Until(t, within, what, func() bool {
		_, err := os.Stat(filepath.Join(g.dir, "reached"))
		return err == nil
	})
}

// open lets the run go on.
func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// gatedRepo makes a Git repository whose configuration creates one
// resource that waits at g while terraform applies it, and returns its
// file:// URL.
func gatedRepo(t *testing.T, g gate) string {
	t.Helper()
	return newTestRepo(t, fmt.Sprintf(`resource "terraform_data" "gated" {
  input = "applied through an outage"
  provisioner "local-exec" {
    command = %q
  }
}

resource "terraform_data" "after" {
  input = terraform_data.gated.output
}
`, g.wait())).url()
}
