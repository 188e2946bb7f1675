package statebackend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// TestTerraformRunLifecycle drives a tracked run through its phases as a
// worker will: init while INITIALIZING, a saved plan while PLANNING, and the
// saved plan applied (on another worker, after a confirmation) while
// APPLYING. The override file carries no credentials; each phase's come
// through the environment, so the saved plan is applied with the applying
// phase's credentials.
func TestTerraformRunLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	p := newProject(t, mainTF)
	if err := tfbackend.CheckNoBackend(p.dir); err != nil {
		t.Fatal(err)
	}
	p.writeOverride(e.srv.URL, stk, statebackend.Credentials{})

	runID := e.newRun(stk, run.Tracked, run.Initializing)
	initCreds := e.mint(stk, runID, run.PhaseInitializing)
	p.mustRun(initCreds.Env(), "init", "-input=false")

	e.advance(runID, run.Planning)
	planCreds := e.mint(stk, runID, run.PhasePlanning)
	out := p.mustRun(planCreds.Env(), "plan", "-input=false", "-out=run.tfplan", "-var", "input=one")
	if !strings.Contains(out, "1 to add") {
		t.Fatalf("plan output:\n%s", out)
	}
	// Planning reads and locks, and writes nothing.
	if got := e.stateEvents(stk); !slices.Equal(got, []string{"StateLocked", "StateUnlocked"}) {
		t.Fatalf("state events after plan: %v", got)
	}
	if status, _, _ := e.do(http.MethodGet, e.stateURL(stk), &initCreds, nil, nil); status != http.StatusForbidden {
		t.Fatalf("initializing credentials while PLANNING: status %d, want 403", status)
	}

	e.advance(runID, run.Applying)
	applyCreds := e.mint(stk, runID, run.PhaseApplying)
	p.mustRun(applyCreds.Env(), "apply", "-input=false", "run.tfplan")
	if status, _, _ := e.do(http.MethodGet, e.stateURL(stk), &planCreds, nil, nil); status != http.StatusForbidden {
		t.Fatalf("planning credentials while APPLYING: status %d, want 403", status)
	}

	versions, err := e.svc.Versions(e.ctx, stk)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Fatalf("versions after apply: %+v", versions)
	}
	v1 := versions[0]
	if v1.Version != 1 || v1.RunID != runID || v1.Kind != state.KindWrite || v1.Actor != "run:"+runID || v1.Lineage == "" || v1.Size == 0 {
		t.Fatalf("version 1: %+v", v1)
	}
	// The event names the run as actor and causation.
	stored, err := e.store.Load(e.ctx, statebackend.StreamOf(stk).ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range stored {
		if ev.Metadata.Actor != "run:"+runID || ev.Metadata.CausationID != runID {
			t.Errorf("event %s metadata %+v, want actor run:%s and causation %s", ev.Type, ev.Metadata, runID, runID)
		}
	}

	// A second apply writes a new version with a higher serial.
	p.mustRun(applyCreds.Env(), "apply", "-input=false", "-auto-approve", "-var", "input=two")
	versions, err = e.svc.Versions(e.ctx, stk)
	if err != nil {
		t.Fatal(err)
	}
	last := versions[len(versions)-1]
	if len(versions) < 2 || last.Serial <= v1.Serial || last.Lineage != v1.Lineage || last.RunID != runID {
		t.Fatalf("versions after the second apply: %+v", versions)
	}
	status, body, hdr := e.do(http.MethodGet, e.stateURL(stk), &applyCreds, nil, nil)
	if status != http.StatusOK || hdr.Get("Content-MD5") == "" {
		t.Fatalf("GET: %d %v", status, hdr)
	}
	var tfstate struct {
		Serial  uint64 `json:"serial"`
		Outputs map[string]struct {
			Value string `json:"value"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(body), &tfstate); err != nil {
		t.Fatal(err)
	}
	if tfstate.Serial != last.Serial || tfstate.Outputs["value"].Value != "two" {
		t.Fatalf("served state: serial %d, outputs %+v; want serial %d and value two", tfstate.Serial, tfstate.Outputs, last.Serial)
	}

	// The run ends: its credentials stop working.
	e.advance(runID, run.Finished)
	if status, _, _ := e.do(http.MethodGet, e.stateURL(stk), &applyCreds, nil, nil); status != http.StatusForbidden {
		t.Fatalf("credentials of a finished run: status %d, want 403", status)
	}
}

// TestTerraformTaskWithCredentialsInOverride runs a task's terraform with
// the credentials written into the override file, as the file-only set-up
// does.
func TestTerraformTaskWithCredentialsInOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	p := newProject(t, mainTF)
	runID := e.newRun(stk, run.Task, run.Performing)
	creds := e.mint(stk, runID, run.PhasePerforming)
	p.writeOverride(e.srv.URL, stk, creds)
	// Our own override does not count as the code declaring a backend.
	if err := tfbackend.CheckNoBackend(p.dir); err != nil {
		t.Fatal(err)
	}
	p.mustRun(nil, "init", "-input=false")
	p.mustRun(nil, "apply", "-input=false", "-auto-approve")
	out := p.mustRun(nil, "state", "list")
	if strings.TrimSpace(out) != "terraform_data.example" {
		t.Fatalf("state list: %q", out)
	}
	if vs, err := e.svc.Versions(e.ctx, stk); err != nil || len(vs) != 1 || vs[0].RunID != runID {
		t.Fatalf("versions: %+v, %v", vs, err)
	}
}

// TestTerraformLock runs two applies with the same credentials: the second
// gets terraform's lock error naming the holder. The first is then killed
// holding the lock, and terraform force-unlock by the same run releases it.
func TestTerraformLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	p := newProject(t, mainTF)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	creds := e.mint(stk, runID, run.PhaseApplying)
	p.writeOverride(e.srv.URL, stk, creds)
	p.mustRun(nil, "init", "-input=false")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var slowOut bytes.Buffer
	slow := p.command(ctx, nil, "apply", "-input=false", "-auto-approve", "-var", "input=slow", "-var", "sleep=300")
	slow.Stdout, slow.Stderr = &slowOut, &slowOut
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Wait() }()
	defer func() {
		_ = syscall.Kill(-slow.Process.Pid, syscall.SIGKILL)
		<-slowDone
	}()

	var holder state.Holder
	await.Until(t, time.Minute, "the first apply to take the lock", func() bool {
		var ok bool
		holder, ok = e.state(stk).Holder()
		return ok
	})
	if holder.RunID != runID || !strings.Contains(holder.Info, holder.LockID) {
		t.Fatalf("holder %+v", holder)
	}

	out, err := p.run(nil, "apply", "-input=false", "-auto-approve", "-var", "input=fast")
	if err == nil {
		t.Fatalf("the second apply succeeded while the first held the lock:\n%s", out)
	}
	if !strings.Contains(out, "Error acquiring the state lock") || !strings.Contains(out, holder.LockID) {
		t.Fatalf("the second apply's error does not name the holder's lock %s:\n%s", holder.LockID, out)
	}

	// The first apply dies holding the lock, as a crashed process would.
	if err := syscall.Kill(-slow.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-slowDone
	slowDone <- nil // for the deferred cleanup
	if h, ok := e.state(stk).Holder(); !ok || h.LockID != holder.LockID {
		t.Fatalf("after the kill the lock is %+v (%v), want still %s", h, ok, holder.LockID)
	}

	p.mustRun(nil, "force-unlock", "-force", holder.LockID)
	if _, ok := e.state(stk).Holder(); ok {
		t.Fatal("still locked after force-unlock")
	}
	evs := e.load(statebackend.StreamOf(stk).ID)
	unlocked, ok := evs[len(evs)-1].(state.StateUnlocked)
	if !ok || unlocked.LockID != holder.LockID || !unlocked.Forced || unlocked.Actor != "run:"+runID {
		t.Fatalf("last event %#v, want a forced StateUnlocked of %s by the run", evs[len(evs)-1], holder.LockID)
	}

	p.mustRun(nil, "apply", "-input=false", "-auto-approve", "-var", "input=after")
	if vs, err := e.svc.Versions(e.ctx, stk); err != nil || len(vs) == 0 {
		t.Fatalf("versions after the last apply: %+v, %v", vs, err)
	}
}
