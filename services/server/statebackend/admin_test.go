package statebackend_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{MaxStateSize: 4096})
	stk := e.createStack(true)
	file := stateJSON(7, lineageA, "imported")

	tooLarge := stateJSON(1, lineageA, strings.Repeat("x", 5000))
	cases := []struct {
		name    string
		stackID string
		data    []byte
		is      error
		msg     string
	}{
		{"too large", stk, tooLarge, statebackend.ErrTooLarge, "limit of 4.0 KiB"},
		{"not JSON", stk, []byte("terraform {}"), statebackend.ErrInvalidState, "not valid JSON"},
		{"not a state", stk, []byte(`{"resources":[]}`), statebackend.ErrInvalidState, `"version"`},
		{"a stack without managed state", e.createStack(false), file, statebackend.ErrNotManaged, ""},
		{"an unknown stack", "stk_nope", file, domain.ErrNotFound, ""},
	}
	for _, tc := range cases {
		before := e.counts()
		_, err := e.svc.Import(e.ctx, tc.stackID, tc.data, alice)
		if !errors.Is(err, tc.is) || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: error %v, want %v with %q", tc.name, err, tc.is, tc.msg)
		}
		if tc.is == statebackend.ErrTooLarge || tc.is == statebackend.ErrInvalidState {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("%s: %v does not match domain.ErrInvalid", tc.name, err)
			}
		}
		if after := e.counts(); after != before {
			t.Errorf("%s changed %+v to %+v", tc.name, before, after)
		}
	}

	v, err := e.svc.Import(e.ctx, stk, file, alice)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || v.Kind != state.KindImport || v.Serial != 7 || v.Lineage != lineageA || v.Actor != alice || v.RunID != "" {
		t.Fatalf("imported version %+v", v)
	}
	if _, err := e.svc.Import(e.ctx, stk, stateJSON(8, lineageA, "again"), alice); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("second import: %v", err)
	}
	// A run reads the imported state, and continues its lineage.
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	if status, body, _ := e.do(http.MethodGet, e.stateURL(stk), &c, nil, nil); status != http.StatusOK || body != string(file) {
		t.Fatalf("GET after import: %d %s", status, body)
	}
}

// TestStageImport creates a stack and its imported state in one append.
func TestStageImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := newID("stk")
	file := stateJSON(3, lineageA, "staged")
	batch, err := e.svc.StageImport(e.ctx, stk, file, alice)
	if err != nil {
		t.Fatal(err)
	}
	created, err := stack.Decide(stack.State{}, stack.Create{StackID: stk, ManagedState: true, Actor: alice, At: time.Now(),
		Settings: stack.Settings{Name: "staged", RepositoryURL: "https://example.com/infra.git"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AppendAll(e.ctx,
		eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamStack, ID: stk}, Expected: eventstore.NoStream, Events: stackEvents(created)},
		batch); err != nil {
		t.Fatal(err)
	}
	data, v, err := e.svc.Download(e.ctx, stk, 0, alice)
	if err != nil || !bytes.Equal(data, file) || v.Kind != state.KindImport || v.Version != 1 {
		t.Fatalf("download after staged import: %+v %v %q", v, err, data)
	}
	if _, err := e.svc.StageImport(e.ctx, stk, []byte("{}"), alice); !errors.Is(err, statebackend.ErrInvalidState) {
		t.Fatalf("staging an invalid file: %v", err)
	}
}

func TestRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	url := e.stateURL(stk)
	s1, s2 := stateJSON(1, lineageA, "one"), stateJSON(2, lineageA, "two")
	for _, s := range [][]byte{s1, s2} {
		if status, body, _ := e.do(http.MethodPost, url, &c, s, nil); status != http.StatusOK {
			t.Fatalf("POST: %d %s", status, body)
		}
	}

	// While the run holds the stack's run lock, a rollback is refused.
	e.stackCommand(stk, stack.EnqueueRun{RunID: runID, RunType: run.Tracked, Actor: alice, At: time.Now()})
	e.stackCommand(stk, stack.AcquireLock{RunID: runID, Actor: scheduler, At: time.Now()})
	e.stackCommand(stk, stack.Lock{Note: "rolling back", Actor: alice, At: time.Now()})
	facts := statebackend.RollbackFactsOf(e.stackState(stk), alice)
	if !facts.HoldsStackLock || !facts.RunInProgress {
		t.Fatalf("facts %+v", facts)
	}
	before := e.counts()
	if _, err := e.svc.Rollback(e.ctx, stk, 1, alice, facts); !errors.Is(err, state.ErrNotAllowed) {
		t.Fatalf("rollback during a run: %v", err)
	}
	if _, err := e.svc.Rollback(e.ctx, stk, 1, "user:bob", statebackend.RollbackFactsOf(e.stackState(stk), "user:bob")); !errors.Is(err, state.ErrNotAllowed) {
		t.Fatalf("rollback by someone without the stack lock: %v", err)
	}
	if after := e.counts(); after != before {
		t.Fatalf("refused rollbacks changed %+v to %+v", before, after)
	}

	e.advance(runID, run.Finished)
	e.stackCommand(stk, stack.ReleaseLock{RunID: runID, Actor: scheduler, At: time.Now()})
	facts = statebackend.RollbackFactsOf(e.stackState(stk), alice)
	if _, err := e.svc.Rollback(e.ctx, stk, 9, alice, facts); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("rollback to an unknown version: %v", err)
	}
	v, err := e.svc.Rollback(e.ctx, stk, 1, alice, facts)
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := e.state(stk).VersionAt(1)
	if v.Version != 3 || v.Kind != state.KindRollback || v.RolledBackFrom != 1 || v.Actor != alice || v.Serial != 1 ||
		v.SHA256 != v1.SHA256 || v.BlobKey == v1.BlobKey {
		t.Fatalf("rollback version %+v (version 1: %+v)", v, v1)
	}
	data, cur, err := e.svc.Download(e.ctx, stk, 0, alice)
	if err != nil || cur.Version != 3 || !bytes.Equal(data, s1) {
		t.Fatalf("current after rollback: %+v %v %q", cur, err, data)
	}
	// The next run continues from the restored serial.
	next := e.newRun(stk, run.Tracked, run.Applying)
	c2 := e.mint(stk, next, run.PhaseApplying)
	if status, body, _ := e.do(http.MethodPost, url, &c2, stateJSON(2, lineageA, "two again"), nil); status != http.StatusOK {
		t.Fatalf("POST after rollback: %d %s", status, body)
	}
}

func TestDownloadIsRecordedAndVerified(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	if _, _, err := e.svc.Download(e.ctx, stk, 0, alice); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("download without a state: %v", err)
	}
	file := stateJSON(1, lineageA, "x")
	v, err := e.svc.Import(e.ctx, stk, file, alice)
	if err != nil {
		t.Fatal(err)
	}
	data, got, err := e.svc.Download(e.ctx, stk, 1, "user:carol")
	if err != nil || !bytes.Equal(data, file) || got != v {
		t.Fatalf("download: %+v %v", got, err)
	}
	evs := e.load(statebackend.StreamOf(stk).ID)
	if d, ok := evs[len(evs)-1].(state.StateDownloaded); !ok || d.Version != 1 || d.Actor != "user:carol" {
		t.Fatalf("last event %#v", evs[len(evs)-1])
	}

	// Damaged bytes are never served: not to an administrator, not to a run.
	if err := e.bucket.WriteAll(e.ctx, v.BlobKey, bytes.Replace(file, []byte(`"x"`), []byte(`"y"`), 1), nil); err != nil {
		t.Fatal(err)
	}
	before := e.counts()
	if _, _, err := e.svc.Download(e.ctx, stk, 1, alice); !errors.Is(err, statebackend.ErrCorrupt) {
		t.Fatalf("download of a damaged blob: %v", err)
	}
	if after := e.counts(); after != before {
		t.Fatal("a failed download was recorded")
	}
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	if status, body, _ := e.do(http.MethodGet, e.stateURL(stk), &c, nil, nil); status != http.StatusInternalServerError || strings.Contains(body, "state/") {
		t.Fatalf("GET of a damaged blob: %d %q", status, body)
	}
}

func TestForceUnlockByAdministrator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	if status, _, _ := e.do("LOCK", e.stateURL(stk), &c, lockInfo("held"), nil); status != http.StatusOK {
		t.Fatal("LOCK failed")
	}
	if err := e.svc.ForceUnlock(e.ctx, stk, alice); err != nil {
		t.Fatal(err)
	}
	evs := e.load(statebackend.StreamOf(stk).ID)
	if u, ok := evs[len(evs)-1].(state.StateUnlocked); !ok || !u.Forced || u.LockID != "held" || u.Actor != alice {
		t.Fatalf("last event %#v", evs[len(evs)-1])
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk, unmanaged, other := e.createStack(true), e.createStack(false), e.createStack(true)
	planning := e.newRun(stk, run.Proposed, run.Planning)
	ended := e.newRun(stk, run.Proposed, run.Finished)
	cases := []struct {
		name         string
		stack, runID string
		phase        run.Phase
		is           error
	}{
		{"a stack without managed state", unmanaged, planning, run.PhasePlanning, statebackend.ErrNotManaged},
		{"an unknown stack", "stk_unknown", planning, run.PhasePlanning, domain.ErrNotFound},
		{"a run of another stack", other, planning, run.PhasePlanning, domain.ErrInvalid},
		{"an unknown run", stk, "run_unknown", run.PhasePlanning, domain.ErrNotFound},
		{"an ended run", stk, ended, run.PhasePlanning, domain.ErrInvalid},
		{"a phase that does not touch state", stk, planning, run.PhasePreparing, domain.ErrInvalid},
		{"applying for a proposed run", stk, planning, run.PhaseApplying, domain.ErrInvalid},
		{"performing for a proposed run", stk, planning, run.PhasePerforming, domain.ErrInvalid},
		{"ids swapped", planning, stk, run.PhasePlanning, domain.ErrInvalid},
	}
	for _, tc := range cases {
		if _, err := e.svc.Mint(e.ctx, tc.stack, tc.runID, tc.phase); !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
	}

	c1 := e.mint(stk, planning, run.PhasePlanning)
	c2 := e.mint(stk, planning, run.PhasePlanning)
	if c1.Username == c2.Username || c1.Password == c2.Password || len(c1.Password) < 43 || c1.Access != statebackend.AccessRead {
		t.Fatalf("credentials are not one-off: %v %v", c1, c2)
	}
	var stored []byte
	if err := e.pool.QueryRow(e.ctx, "SELECT password_sha256 FROM state_credentials WHERE username = $1", c1.Username).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(c1.Password)); !bytes.Equal(stored, want[:]) {
		t.Fatalf("stored %x, want the password's SHA-256 %x", stored, want)
	}

	// The password never shows in formatting or logs.
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("minted", "creds", c1)
	for _, s := range []string{fmt.Sprint(c1), fmt.Sprintf("%+v", c1), fmt.Sprintf("%#v", c1), fmt.Sprintf("%v", &c1), logs.String()} {
		if strings.Contains(s, c1.Password) {
			t.Errorf("password in %q", s)
		}
		if !strings.Contains(s, c1.Username) {
			t.Errorf("username missing from %q", s)
		}
	}
	if env := strings.Join(c1.Env(), "\n"); !strings.Contains(env, "TF_HTTP_USERNAME="+c1.Username) || !strings.Contains(env, "TF_HTTP_PASSWORD="+c1.Password) {
		t.Errorf("Env() = %v", c1.Env())
	}
}

func TestNewChecksItsParts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	bare := eventstore.New(e.pool, eventstore.NewRegistry())
	t.Cleanup(bare.Close)
	if _, err := statebackend.New(testenv.Aggregates(t, bare), e.pool, e.objects, statebackend.Config{}); err == nil || !strings.Contains(err.Error(), "StateVersionWritten") {
		t.Fatalf("New with a registry without state events: %v", err)
	}
	if _, err := statebackend.New(testenv.Aggregates(t, e.store), nil, nil, statebackend.Config{MaxStateSize: -1}); err == nil {
		t.Fatal("New accepted a negative size limit")
	}
	if _, err := statebackend.New(testenv.Aggregates(t, e.store), nil, nil, statebackend.Config{}); err == nil || !strings.Contains(err.Error(), "bucket") || !strings.Contains(err.Error(), "database") {
		t.Fatalf("New without database and bucket: %v", err)
	}
}
