package testenv

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestPostgresGivesParallelTestsSeparateEmptyDatabases(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"first", "second"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				conn := connect(t, Postgres(t))
				var name string
				var tables int
				if err := conn.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&name, &tables); err != nil {
					t.Fatal(err)
				}
				if tables != 0 {
					t.Errorf("database %s has %d tables, want a fresh empty one", name, tables)
				}
				// The other test makes the same table: it must not see this one.
				if _, err := conn.Exec(ctx, "CREATE TABLE mine (v int)"); err != nil {
					t.Fatalf("create table in %s: %v", name, err)
				}
				mu.Lock()
				names = append(names, name)
				mu.Unlock()
			})
		}
	})
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases %v, want two different ones", names)
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "t_testpostgresgivesparalleltestsseparateemptydatabases_group_") {
			t.Errorf("database name %s does not follow t_<test name>_<n>", name)
		}
	}
	var left int
	err := connect(t, PostgresAdminURL(t)).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d of the databases %v still exist after their tests ended", left, names)
	}
}

func TestPostgresDropsDatabaseWithOpenSessions(t *testing.T) {
	var name string
	t.Run("leaves a connection open", func(sub *testing.T) {
		// Opened in the subtest's database but closed only by the parent, so it is still open
		// when the subtest's cleanup drops the database.
		conn := connect(t, Postgres(sub))
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			sub.Fatal(err)
		}
	})
	var exists bool
	if err := connect(t, PostgresAdminURL(t)).QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s survived its test because a session was open", name)
	}
}

func TestExternalServerSkipsTakenNames(t *testing.T) {
	ctx := context.Background()
	env, err := newExternalEnv(ctx, PostgresAdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.close(); err != nil {
			t.Error(err)
		}
	})
	// Another test binary on the same server already holds the first name this env would use.
	taken := databaseName(t.Name(), 1)
	admin := connect(t, PostgresAdminURL(t))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+taken); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE "+taken+" WITH (FORCE)") })

	var got string
	if err := connect(t, env.database(t)).QueryRow(ctx, "SELECT current_database()").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := databaseName(t.Name(), 2); got != want {
		t.Fatalf("database = %s, want %s", got, want)
	}
}

func TestDatabaseName(t *testing.T) {
	tests := []struct {
		test string
		n    int64
		want string
	}{
		{"TestAppend", 1, "t_testappend_1"},
		{"TestAppend/Conflict_on_stale-version#01", 12, "t_testappend_conflict_on_stale_version_01_12"},
		{"Test__weird  name__", 3, "t_test_weird_name_3"},
	}
	for _, tt := range tests {
		if got := databaseName(tt.test, tt.n); got != tt.want {
			t.Errorf("databaseName(%q, %d) = %q, want %q", tt.test, tt.n, got, tt.want)
		}
	}
	long := databaseName("Test"+strings.Repeat("X", 100), 123456)
	if len(long) > maxIdentifier || !strings.HasSuffix(long, "_123456") {
		t.Fatalf("long name %q (%d bytes) must fit in %d bytes and keep its number", long, len(long), maxIdentifier)
	}
}
