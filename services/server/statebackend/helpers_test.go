package statebackend_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv"
)

const (
	alice     = "user:alice"
	scheduler = "system:scheduler"
	worker1   = "wkr_01"
	worker2   = "wkr_02"
	pool      = "wp_public"
	commit    = "0123456789abcdef0123456789abcdef01234567"
)

// env is one test's world: a fresh database, a file:// bucket, the service,
// and its handler served over HTTP on 127.0.0.1.
type env struct {
	t       testing.TB
	ctx     context.Context
	pool    *pgxpool.Pool
	store   *eventstore.Store
	bucket  *blob.Bucket
	objects *objstore.Store // the bucket, encrypting state files at rest
	blobs   string          // the bucket's directory
	svc     *statebackend.Service
	srv     *httptest.Server
}

// registry returns the domain registry with the state events, as
// eventstore.DomainRegistry will once they are registered there.
func registry(t testing.TB) *eventstore.Registry {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if reg.Known("StateVersionWritten") {
		return reg
	}
	for _, e := range state.Events() {
		if err := reg.RegisterNamed(e); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func newEnv(t testing.TB, cfg statebackend.Config) *env {
	t.Helper()
	return newEnvOn(t, testenv.Postgres(t), cfg)
}

// newEnvOn is newEnv on the database at dbURL.
func newEnvOn(t testing.TB, dbURL string, cfg statebackend.Config) *env {
	t.Helper()
	return newEnvAt(t, dbURL, "", cfg)
}

// newEnvAt is newEnvOn with the bucket at blobURL; "" is a file:// bucket
// in a temporary directory (env.blobs).
func newEnvAt(t testing.TB, dbURL, blobURL string, cfg statebackend.Config) *env {
	t.Helper()
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(pool, registry(t))
	t.Cleanup(store.Close)
	var blobs string
	if blobURL == "" {
		blobs = t.TempDir()
		if blobURL, err = objstore.FileURL(blobs); err != nil {
			t.Fatal(err)
		}
	}
	objects := testenv.ObjectStore(t, blobURL, testenv.Keeper(t))
	svc, err := statebackend.New(testenv.Aggregates(t, store), pool, objects, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(statebackend.PathPrefix, svc.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, ctx: ctx, pool: pool, store: store, bucket: objects.Bucket(), objects: objects, blobs: blobs, svc: svc, srv: srv}
}

func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// createStack creates a stack, with managed state or not.
func (e *env) createStack(managed bool) string {
	e.t.Helper()
	id := newID("stk")
	events, err := stack.Decide(stack.State{}, stack.Create{StackID: id, ManagedState: managed, Actor: alice, At: time.Now(),
		Settings: stack.Settings{Name: "s" + id[4:], RepositoryURL: "https://example.com/infra.git"}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.appendTo(eventstore.Stream{Type: eventstore.StreamStack, ID: id}, stackEvents(events))
	return id
}

// stackCommand decides cmd on the stack and appends its events.
func (e *env) stackCommand(stackID string, cmd stack.Command) {
	e.t.Helper()
	var st stack.State
	for _, ev := range e.load(stackID) {
		st.Apply(ev.(stack.Event))
	}
	events, err := stack.Decide(st, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	e.appendTo(eventstore.Stream{Type: eventstore.StreamStack, ID: stackID}, stackEvents(events))
}

func (e *env) stackState(stackID string) stack.State {
	e.t.Helper()
	var st stack.State
	for _, ev := range e.load(stackID) {
		st.Apply(ev.(stack.Event))
	}
	return st
}

func stackEvents(events []stack.Event) []any {
	out := make([]any, len(events))
	for i, ev := range events {
		out[i] = ev
	}
	return out
}

// load decodes every event of a stream.
func (e *env) load(streamID string) []any {
	e.t.Helper()
	stored, err := e.store.Load(e.ctx, streamID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]any, len(stored))
	for i, ev := range stored {
		if out[i], err = e.store.Registry().Decode(ev); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

func (e *env) appendTo(stream eventstore.Stream, events []any) {
	e.t.Helper()
	if len(events) == 0 {
		return
	}
	v, err := e.store.Version(e.ctx, stream.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.Append(e.ctx, stream, v, events...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) runState(runID string) run.State {
	e.t.Helper()
	var st run.State
	for _, ev := range e.load(runID) {
		st.Apply(ev.(run.Event))
	}
	return st
}

// runCommand decides cmd on the run and appends the events, as the services
// acting for a worker, the scheduler and users will.
func (e *env) runCommand(runID string, cmd run.Command) {
	e.t.Helper()
	events, err := run.Decide(e.runState(runID), cmd)
	if err != nil {
		e.t.Fatalf("run %s: %T: %v", runID, cmd, err)
	}
	out := make([]any, len(events))
	for i, ev := range events {
		out[i] = ev
	}
	e.appendTo(eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, out)
}

// newRun triggers a run of typ on the stack and drives it to status `to`
// through the commands a worker's phases cause. A TRACKED run reaches
// APPLYING by way of UNCONFIRMED and a confirmation.
func (e *env) newRun(stackID string, typ run.Type, to run.Status) string {
	e.t.Helper()
	id := newID("run")
	trigger := run.Trigger{RunID: id, StackID: stackID, Type: typ, Commit: commit, Actor: alice, At: time.Now()}
	if typ == run.Task {
		trigger.TaskCommand = "terraform state list"
	}
	e.runCommand(id, trigger)
	e.advance(id, to)
	return id
}

// advance drives a run forward until it reaches status to.
func (e *env) advance(runID string, to run.Status) {
	e.t.Helper()
	for i := 0; e.runState(runID).Status() != to; i++ {
		if i > 20 {
			e.t.Fatalf("run %s did not reach %s (at %s)", runID, to, e.runState(runID).Status())
		}
		r := e.runState(runID)
		now := time.Now()
		var cmd run.Command
		switch r.Status() {
		case run.Queued:
			cmd = run.MarkReady{Actor: scheduler, At: now}
		case run.Ready:
			if r.WorkerID() == "" {
				cmd = run.Assign{WorkerID: worker1, PoolID: pool, Actor: scheduler, At: now}
			} else {
				cmd = run.StartPhase{Phase: run.PhasePreparing, Actor: worker1, At: now}
			}
		case run.Preparing:
			e.finishPhase(runID, run.PhasePreparing, false)
			cmd = run.StartPhase{Phase: run.PhaseInitializing, Actor: worker1, At: now}
		case run.Initializing:
			e.finishPhase(runID, run.PhaseInitializing, false)
			next := run.PhasePlanning
			if r.Type() == run.Task {
				next = run.PhasePerforming
			}
			cmd = run.StartPhase{Phase: next, Actor: worker1, At: now}
		case run.Planning:
			cmd = run.PhaseFinished{Phase: run.PhasePlanning, HasChanges: r.Type() == run.Tracked, Actor: worker1, At: now}
		case run.Unconfirmed:
			cmd = run.Confirm{Actor: alice, At: now}
		case run.Confirmed:
			if r.WorkerID() == "" {
				cmd = run.Assign{WorkerID: worker2, PoolID: pool, Actor: scheduler, At: now}
			} else {
				cmd = run.StartPhase{Phase: run.PhasePreparingApply, Actor: worker2, At: now}
			}
		case run.PreparingApply:
			e.finishPhase(runID, run.PhasePreparingApply, false)
			cmd = run.StartPhase{Phase: run.PhaseApplying, Actor: worker2, At: now}
		case run.Applying, run.Performing:
			if to != run.Finished {
				e.t.Fatalf("run %s cannot go from %s to %s", runID, r.Status(), to)
			}
			e.finishPhase(runID, run.Phase(r.Status()), false)
			cmd = run.Finish{Actor: r.WorkerID(), At: now}
		default:
			e.t.Fatalf("run %s is %s, cannot reach %s", runID, r.Status(), to)
		}
		e.runCommand(runID, cmd)
	}
}

func (e *env) finishPhase(runID string, p run.Phase, changes bool) {
	e.t.Helper()
	e.runCommand(runID, run.PhaseFinished{Phase: p, HasChanges: changes, Actor: worker1, At: time.Now()})
}

func (e *env) mint(stackID, runID string, phase run.Phase) statebackend.Credentials {
	e.t.Helper()
	c, err := e.svc.Mint(e.ctx, stackID, runID, phase)
	if err != nil {
		e.t.Fatalf("mint %s: %v", phase, err)
	}
	return c
}

func (e *env) stateURL(stackID string) string { return e.srv.URL + statebackend.PathPrefix + stackID }

// do sends one request to the backend; creds may be nil.
func (e *env) do(method, url string, creds *statebackend.Credentials, body []byte, header http.Header) (int, string, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if creds != nil {
		req.SetBasicAuth(creds.Username, creds.Password)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(data), resp.Header
}

// counts is what a refused request must not change.
type counts struct{ events, blobs int }

func (e *env) counts() counts {
	e.t.Helper()
	var c counts
	if err := e.pool.QueryRow(e.ctx, "SELECT count(*) FROM events").Scan(&c.events); err != nil {
		e.t.Fatal(err)
	}
	it := e.bucket.List(nil)
	for {
		_, err := it.Next(e.ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			e.t.Fatal(err)
		}
		c.blobs++
	}
	return c
}

func (e *env) state(stackID string) state.State {
	e.t.Helper()
	st, err := e.svc.State(e.ctx, stackID)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// stateJSON returns a small Terraform state file.
func stateJSON(serial int, lineage, value string) []byte {
	return fmt.Appendf(nil, `{
  "version": 4,
  "terraform_version": "1.11.4",
  "serial": %d,
  "lineage": %q,
  "outputs": {"value": {"value": %q, "type": "string"}},
  "resources": [],
  "check_results": null
}
`, serial, lineage, value)
}

// stateEvents returns the state stream's event types in order.
func (e *env) stateEvents(stackID string) []string {
	e.t.Helper()
	stored, err := e.store.Load(e.ctx, statebackend.StreamOf(stackID).ID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, len(stored))
	for i, ev := range stored {
		out[i] = ev.Type
	}
	return out
}
