package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestProjectorRebuildKeepsTheReadModels(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "rebuilt", "--repo", repo, "--label", "x=y")
	srv.mustCLI(t, "stack", "env", "set", "rebuilt", "K", "v")
	for range 3 {
		srv.mustCLI(t, "run", "trigger", "rebuilt")
	}
	before := srv.mustCLI(t, "-o", "json", "stack", "show", "rebuilt") + srv.mustCLI(t, "-o", "json", "run", "list", "rebuilt")

	out, err := srv.cliEnv(t, map[string]string{"GANTRY_DATABASE_URL": srv.dbURL, "GANTRY_LOG_LEVEL": "error"}, "projector", "rebuild")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "rebuilt [stacks runs pools workers apikeys]" {
		t.Errorf("projector rebuild printed %q", out)
	}
	if after := srv.mustCLI(t, "-o", "json", "stack", "show", "rebuilt") + srv.mustCLI(t, "-o", "json", "run", "list", "rebuilt"); after != before {
		t.Errorf("the read models differ after a rebuild:\n%s\nbefore:\n%s", after, before)
	}
	if _, err := srv.cliEnv(t, map[string]string{"GANTRY_DATABASE_URL": srv.dbURL}, "projector", "rebuild", "nope"); err == nil ||
		!strings.Contains(err.Error(), "unknown projection") {
		t.Errorf("rebuilding an unknown projection: %v", err)
	}
}

// The projector alone (what `gantry projector` runs) keeps the read models
// of a database no server projects.
func TestRunProjectorProjects(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and NATS")
	}
	dbURL := testenv.Postgres(t)
	nats := testenv.NATS(t)
	ctx := context.Background()
	pool, err := eventstore.OpenPool(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	nc, err := nats.Bus().Connect("projector-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runProjector(runCtx, pool, nc, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runProjector: %v", err)
		}
	}()

	// runProjector migrates; wait for the schema before appending.
	deadline := time.Now().Add(e2eTimeout)
	for {
		var ready bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass('rm_stacks') IS NOT NULL AND to_regclass('events') IS NOT NULL").Scan(&ready); err != nil {
			t.Fatal(err)
		}
		if ready {
			break
		}
		waitOrFail(t, deadline, done, "the schema")
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(pool, reg)
	defer store.Close()
	md := eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: "user:test"})
	_, err = store.Append(md, eventstore.Stream{Type: eventstore.StreamStack, ID: "stk_projected"}, eventstore.NoStream, stack.StackCreated{
		StackID: "stk_projected", At: time.Now().UTC(), Actor: "user:test",
		Settings: stack.Settings{Name: "projected", RepositoryURL: "https://git.example.com/x.git", Branch: "main", Tool: stack.Terraform, WorkerPoolID: "wp_public"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		var name string
		err := pool.QueryRow(ctx, "SELECT name FROM rm_stacks WHERE id = 'stk_projected'").Scan(&name)
		if err == nil && name == "projected" {
			return
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		waitOrFail(t, deadline, done, "the projected stack")
	}
}

// waitOrFail pauses a bounded poll: the test fails past the deadline or
// when the projector ended.
func waitOrFail(t *testing.T, deadline time.Time, done chan error, what string) {
	t.Helper()
	if time.Now().After(deadline) {
		t.Fatalf("no %s in time", what)
	}
	select {
	case <-time.After(20 * time.Millisecond):
	case err := <-done:
		done <- err // for the deferred stop
		t.Fatalf("runProjector ended before %s: %v", what, err)
	}
}
