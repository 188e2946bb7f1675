package pgserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStartKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := testDataDir(t)
	ctx := context.Background()

	srv := startServer(t, Config{DataDir: dir})
	if got, want := srv.URL("app"), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app?sslmode=disable", srv.Port()); got != want {
		t.Fatalf("URL = %s, want %s", got, want)
	}
	conn := connect(t, srv.URL("postgres"))
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	_ = conn.Close(ctx)
	stopServer(t, srv)
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("postgres exit after fast shutdown: %v", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	again := startServer(t, Config{DataDir: dir})
	var v string
	if err := connect(t, again.URL("postgres")).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil {
		t.Fatalf("read table after restart: %v", err)
	}
	if v != "survives" {
		t.Fatalf("row after restart = %q, want survives", v)
	}
	log, err := os.ReadFile(filepath.Join(dir, logFileName))
	if err != nil {
		t.Fatalf("read postgres log: %v", err)
	}
	if n := strings.Count(string(log), "database system is ready to accept connections"); n != 2 {
		t.Fatalf("postgres.log records %d starts, want 2 (appended across starts)", n)
	}
}

func TestStartAppliesSettings(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{DataDir: testDataDir(t), Settings: map[string]string{"work_mem": "8MB"}})
	conn := connect(t, srv.URL("postgres"))
	want := map[string]string{"max_connections": "200", "fsync": "off", "work_mem": "8MB", "listen_addresses": "127.0.0.1"}
	for name, value := range want {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatalf("read setting %s: %v", name, err)
		}
		if got != value {
			t.Errorf("%s = %s, want %s", name, got, value)
		}
	}
}

func TestStartDurableKeepsFsync(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{DataDir: testDataDir(t), Durable: true})
	var fsync string
	if err := connect(t, srv.URL("postgres")).QueryRow(context.Background(), "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatalf("show fsync: %v", err)
	}
	if fsync != "on" {
		t.Fatalf("fsync = %s on a durable cluster, want on", fsync)
	}
}

func TestStartRefusesDataDirInUse(t *testing.T) {
	t.Parallel()
	dir := testDataDir(t)
	srv := startServer(t, Config{DataDir: dir})
	_, err := Start(context.Background(), Config{DataDir: dir})
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second Start on a running data dir: err = %v, want ErrDataDirInUse", err)
	}
	connect(t, srv.URL("postgres"))
}

func TestStartFailureShowsLogTail(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Config{DataDir: testDataDir(t), Settings: map[string]string{"shared_buffers": "lots"}})
	if err == nil {
		t.Fatal("Start with an invalid setting succeeded")
	}
	if !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
		t.Fatalf("error does not include postgres' complaint: %v", err)
	}
}

func TestCreateAndDropDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t, Config{DataDir: testDataDir(t)})
	if err := srv.CreateDatabase(ctx, "App-Data"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	// An open session must not block the drop.
	conn := connect(t, srv.URL("App-Data"))
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping new database: %v", err)
	}
	if err := srv.DropDatabase(ctx, "App-Data"); err != nil {
		t.Fatalf("drop database with an open session: %v", err)
	}
	if c, err := pgx.Connect(ctx, srv.URL("App-Data")); err == nil {
		_ = c.Close(ctx)
		t.Fatal("connected to a dropped database")
	}
	if err := srv.DropDatabase(ctx, "App-Data"); err != nil {
		t.Fatalf("drop a database that is gone: %v", err)
	}
	for _, bad := range []string{"", "a\"b", "x; DROP DATABASE postgres", strings.Repeat("a", 64), "1abc"} {
		if err := srv.CreateDatabase(ctx, bad); err == nil {
			t.Errorf("CreateDatabase(%q) accepted an invalid name", bad)
		}
	}
}

func TestStopEscalatesWhenContextEnds(t *testing.T) {
	t.Parallel()
	srv, err := Start(context.Background(), Config{DataDir: testDataDir(t)})
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = srv.Stop(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with an ended context: err = %v, want one wrapping context.Canceled", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("postgres still running after a forced Stop")
	}
	if again := srv.Stop(context.Background()); !errors.Is(again, context.Canceled) {
		t.Fatalf("second Stop returned %v, want the first result", again)
	}
}

func TestStartOnTakenFixedPortFails(t *testing.T) {
	t.Parallel()
	first := startServer(t, Config{DataDir: testDataDir(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A fixed port that is taken is an error: the caller asked for that port.
	_, err := Start(ctx, Config{DataDir: testDataDir(t), Port: first.Port()})
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("Start on a taken port: err = %v, want errPortTaken", err)
	}
}

func TestStartWithoutSocketForLongDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testDataDir(t), strings.Repeat("d", 100))
	srv := startServer(t, Config{DataDir: dir})
	var sockets string
	if err := connect(t, srv.URL("postgres")).QueryRow(context.Background(), "SHOW unix_socket_directories").Scan(&sockets); err != nil {
		t.Fatalf("show unix_socket_directories: %v", err)
	}
	if sockets != "" {
		t.Fatalf("unix_socket_directories = %q, want none for a path too long for a socket", sockets)
	}
}

// Not parallel: it replaces pickPort, which parallel tests only use after it is restored.
func TestStartRetriesWhenPickedPortIsTaken(t *testing.T) {
	first := startServer(t, Config{DataDir: testDataDir(t)})
	picks := 0
	pickPort = func() (int, error) {
		picks++
		if picks == 1 {
			return first.Port(), nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })

	rec := &recorder{}
	second := startServer(t, Config{DataDir: testDataDir(t), Logger: slog.New(rec)})
	if second.Port() == first.Port() || picks != 2 {
		t.Fatalf("second cluster on port %d after %d picks; want a new port after 2", second.Port(), picks)
	}
	if !rec.logged("port was taken") {
		t.Fatalf("retry not logged: %q", rec.all())
	}
	var dir string
	if err := connect(t, second.URL("postgres")).QueryRow(context.Background(), "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	if dir != second.DataDir() {
		t.Fatalf("second URL reaches the cluster in %s, want %s", dir, second.DataDir())
	}
}
