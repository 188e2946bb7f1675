package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	domainrun "github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// testMaxStateSize is the state size limit of the server these tests start.
const testMaxStateSize = 16 << 10

// importedState is a state file as terraform writes it: no resources, one
// output, serial 7.
const importedState = `{
  "version": 4,
  "terraform_version": "1.5.0",
  "serial": 7,
  "lineage": "3f0c8a62-4a7e-4c1e-9d59-5c0e8a3e7b21",
  "outputs": {
    "value": {
      "value": "imported",
      "type": "string"
    }
  },
  "resources": [],
  "check_results": null
}
`

// stateMainTF needs no provider download: terraform_data is built in.
const stateMainTF = `
variable "input" {
  type    = string
  default = "one"
}

resource "terraform_data" "example" {
  input = var.input
}

output "value" {
  value = terraform_data.example.output
}
`

// stateHarness drives runs of managed-state stacks with domain events, as a
// worker's phases will, and mints their state credentials with a state
// backend of its own on the server's database and bucket.
type stateHarness struct {
	t   *testing.T
	srv *testServer
	svc *statebackend.Service
}

func newStateHarness(t *testing.T, srv *testServer) *stateHarness {
	t.Helper()
	svc, err := statebackend.New(testenv.Aggregates(t, srv.store), srv.pool, srv.objects(t), statebackend.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &stateHarness{t: t, srv: srv, svc: svc}
}

func (h *stateHarness) runState(id string) domainrun.State {
	h.t.Helper()
	stored, err := h.srv.store.Load(testCtx(h.t), id)
	if err != nil {
		h.t.Fatal(err)
	}
	var st domainrun.State
	for _, ev := range stored {
		v, err := h.srv.store.Registry().Decode(ev)
		if err != nil {
			h.t.Fatal(err)
		}
		st.Apply(v.(domainrun.Event))
	}
	return st
}

func (h *stateHarness) runCommand(id string, cmd domainrun.Command) {
	h.t.Helper()
	st := h.runState(id)
	events, err := domainrun.Decide(st, cmd)
	if err != nil {
		h.t.Fatalf("run %s: %T: %v", id, cmd, err)
	}
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = e
	}
	ctx := testCtx(h.t)
	v, err := h.srv.store.Version(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.srv.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamRun, ID: id}, v, out...); err != nil {
		h.t.Fatal(err)
	}
}

// newRun triggers a tracked run of the stack and drives it to status to.
func (h *stateHarness) newRun(stackID string, to domainrun.Status) string {
	h.t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "run_" + hex.EncodeToString(b)
	h.runCommand(id, domainrun.Trigger{RunID: id, StackID: stackID, Type: domainrun.Tracked,
		Commit: "0123456789abcdef0123456789abcdef01234567", Actor: "user:alice", At: time.Now()})
	h.advance(id, to)
	return id
}

// advance drives a run forward through the commands a worker's phases, the
// scheduler and a confirmation cause, until it reaches status to.
func (h *stateHarness) advance(id string, to domainrun.Status) {
	h.t.Helper()
	const sched, wkr, pool = "system:scheduler", "wkr_01", "wp_public"
	for i := 0; h.runState(id).Status() != to; i++ {
		r := h.runState(id)
		if i > 20 {
			h.t.Fatalf("run %s did not reach %s (at %s)", id, to, r.Status())
		}
		now := time.Now()
		finish := func(p domainrun.Phase) {
			h.runCommand(id, domainrun.PhaseFinished{Phase: p, Actor: wkr, At: now})
		}
		var cmd domainrun.Command
		switch r.Status() {
		case domainrun.Queued:
			cmd = domainrun.MarkReady{Actor: sched, At: now}
		case domainrun.Ready:
			if r.WorkerID() == "" {
				cmd = domainrun.Assign{WorkerID: wkr, PoolID: pool, Actor: sched, At: now}
			} else {
				cmd = domainrun.StartPhase{Phase: domainrun.PhasePreparing, Actor: wkr, At: now}
			}
		case domainrun.Preparing:
			finish(domainrun.PhasePreparing)
			cmd = domainrun.StartPhase{Phase: domainrun.PhaseInitializing, Actor: wkr, At: now}
		case domainrun.Initializing:
			finish(domainrun.PhaseInitializing)
			cmd = domainrun.StartPhase{Phase: domainrun.PhasePlanning, Actor: wkr, At: now}
		case domainrun.Planning:
			cmd = domainrun.PhaseFinished{Phase: domainrun.PhasePlanning, HasChanges: true, Actor: wkr, At: now}
		case domainrun.Unconfirmed:
			cmd = domainrun.Confirm{Actor: "user:alice", At: now}
		case domainrun.Confirmed:
			if r.WorkerID() == "" {
				cmd = domainrun.Assign{WorkerID: wkr, PoolID: pool, Actor: sched, At: now}
			} else {
				cmd = domainrun.StartPhase{Phase: domainrun.PhasePreparingApply, Actor: wkr, At: now}
			}
		case domainrun.PreparingApply:
			finish(domainrun.PhasePreparingApply)
			cmd = domainrun.StartPhase{Phase: domainrun.PhaseApplying, Actor: wkr, At: now}
		case domainrun.Applying:
			finish(domainrun.PhaseApplying)
			cmd = domainrun.Finish{Actor: wkr, At: now}
		default:
			h.t.Fatalf("run %s is %s, cannot reach %s", id, r.Status(), to)
		}
		h.runCommand(id, cmd)
	}
}

func (h *stateHarness) mint(stackID, runID string, phase domainrun.Phase) statebackend.Credentials {
	h.t.Helper()
	c, err := h.svc.Mint(testCtx(h.t), stackID, runID, phase)
	if err != nil {
		h.t.Fatalf("mint %s: %v", phase, err)
	}
	return c
}

// stateEvents returns the stack's state events with their actors.
func (h *stateHarness) stateEvents(stackID string) []eventstore.Event {
	h.t.Helper()
	stored, err := h.srv.store.Load(testCtx(h.t), statebackend.StreamOf(stackID).ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return stored
}

// tfProject is a Terraform project root with its own HOME and an empty CLI
// configuration, whose backend is the test server's.
type tfProject struct {
	t   *testing.T
	dir string
	env []string
}

func newTFProject(t *testing.T, serverURL, stackID string) *tfProject {
	t.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Fatalf("this test runs the real terraform binary: %v", err)
	}
	dir, home := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(stateMainTF), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tfbackend.CheckNoBackend(dir); err != nil {
		t.Fatal(err)
	}
	override := tfbackend.OverrideFile(serverURL, stackID, tfbackend.Credentials{})
	if err := os.WriteFile(filepath.Join(dir, tfbackend.OverrideFileName), override, 0o600); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(home, "terraformrc")
	if err := os.WriteFile(rc, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tfProject{t: t, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TF_DATA_DIR=" + filepath.Join(home, "tfdata"),
		"TF_CLI_CONFIG_FILE=" + rc, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1",
	}}
}

func (p *tfProject) mustRun(creds statebackend.Credentials, args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "terraform", append(args, "-no-color")...)
	cmd.Dir = p.dir
	cmd.Env = append(append([]string{}, p.env...), creds.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// getState sends GET to the server's state backend with creds.
func getState(t *testing.T, url string, creds statebackend.Credentials) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(creds.Username, creds.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

type versionsJSON struct {
	Versions []struct {
		Version        string `json:"version"`
		Serial         string `json:"serial"`
		RunID          string `json:"run_id"`
		Size           string `json:"size"`
		SHA256         string `json:"sha256"`
		Kind           string `json:"kind"`
		Actor          string `json:"actor"`
		RolledBackFrom string `json:"rolled_back_from"`
		Current        bool   `json:"current"`
	} `json:"versions"`
}

func stateVersions(t *testing.T, srv *testServer, stack string) versionsJSON {
	t.Helper()
	var v versionsJSON
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "state", "versions", stack)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantCLIError checks that a command failed with the Connect code and a
// message containing want.
func wantCLIError(t *testing.T, err error, code, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want %s %q", code, want)
	}
	if msg := err.Error(); !strings.Contains(msg, code+": ") || !strings.Contains(msg, want) {
		t.Fatalf("error %q, want %s containing %q", msg, code, want)
	}
}

func TestStateImportRefusesBadFiles(t *testing.T) {
	srv := startServer(t, func(c *serverConfig) { c.maxStateSize = testMaxStateSize })
	repo, _ := gitRepo(t)
	big := `{"version":4,"serial":1,"lineage":"x","outputs":{"pad":{"value":"` + strings.Repeat("a", testMaxStateSize) + `","type":"string"}}}`
	for _, c := range []struct{ name, content, want string }{
		{"not JSON", "serial = 1\n", "import_state: not a Terraform state file: not valid JSON"},
		{"not a state", `{"version":4,"serial":1}`, `import_state: not a Terraform state file: no "lineage" field`},
		{"too large", big, "import_state: state file too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := srv.eventCount(t)
			file := writeFile(t, "import.tfstate", []byte(c.content))
			_, err := srv.cli(t, "stack", "create", "bad", "--repo", repo, "--import-state", file)
			wantCLIError(t, err, "invalid_argument", c.want)
			if n := srv.eventCount(t); n != before {
				t.Errorf("%d events appended by a refused import", n-before)
			}
			_, err = srv.cli(t, "stack", "show", "bad")
			wantCLIError(t, err, "not_found", "bad")
		})
	}
	// Importing into a stack without managed state is refused before anything is stored.
	file := writeFile(t, "import.tfstate", []byte(importedState))
	_, err := srv.cli(t, "stack", "create", "bad", "--repo", repo, "--import-state", file, "--managed-state=false")
	if err == nil || !strings.Contains(err.Error(), "--import-state needs managed state") {
		t.Fatalf("import with --managed-state=false: %v", err)
	}
}

func TestStateImportVersionsPullAndRollback(t *testing.T) {
	srv := startServer(t)
	h := newStateHarness(t, srv)
	repo, _ := gitRepo(t)
	file := writeFile(t, "import.tfstate", []byte(importedState))
	srv.mustCLI(t, "stack", "create", "legacy", "--repo", repo, "--import-state", file)
	srv.mustCLI(t, "stack", "create", "plain", "--repo", repo)
	stk := getStack(t, srv.as(srv.adminToken(t)), "legacy")
	if !stk.GetManagedState() {
		t.Fatal("--import-state did not make a managed-state stack")
	}
	// The admin's actor, as the stack's creation recorded it.
	created, err := srv.store.Load(testCtx(t), stk.GetId())
	if err != nil {
		t.Fatal(err)
	}
	admin := created[0].Metadata.Actor

	// Version 1 is the import, appended with the stack's creation.
	table := srv.mustCLI(t, "state", "versions", "legacy")
	if !regexpMatch(`(?m)^VERSION\s+SERIAL\s+TIME\s+RUN\s+SIZE\s+SHA256`, table) || !regexpMatch(`(?m)^1\*\s+7\s+\S+\s+-\s+`+strconv.Itoa(len(importedState))+`\s+[0-9a-f]{64}\s+IMPORT\s+`+admin+`$`, table) {
		t.Fatalf("state versions:\n%s", table)
	}
	if events := h.stateEvents(stk.GetId()); len(events) != 1 || events[0].Type != "StateVersionWritten" || events[0].Position < created[0].Position {
		t.Fatalf("state events after the import: %+v", events)
	}
	_, err = srv.cli(t, "state", "versions", "plain")
	wantCLIError(t, err, "failed_precondition", "stack plain does not use managed state")

	t.Run("pull", func(t *testing.T) {
		before := len(h.stateEvents(stk.GetId()))
		_, err := srv.cliAs(t, srv.token(t, "bob", apikey.RoleWriter), "state", "pull", "legacy")
		wantCLIError(t, err, "permission_denied", "administrator")
		if n := len(h.stateEvents(stk.GetId())); n != before {
			t.Fatalf("a refused download appended %d state events", n-before)
		}
		if got := srv.mustCLI(t, "state", "pull", "legacy"); got != importedState {
			t.Fatalf("state pull returned %q, want the imported file", got)
		}
		events := h.stateEvents(stk.GetId())
		last := events[len(events)-1]
		if len(events) != before+1 || last.Type != "StateDownloaded" || last.Metadata.Actor != admin {
			t.Fatalf("after the download: %d events, last %s by %s; want one StateDownloaded by %s", len(events)-before, last.Type, last.Metadata.Actor, admin)
		}
		_, err = srv.cli(t, "state", "pull", "legacy", "--version", "9")
		wantCLIError(t, err, "not_found", "version 9")
	})

	// A run reads the imported state through the server's http backend, and
	// its apply writes version 2.
	p := newTFProject(t, srv.url, stk.GetId())
	runID := h.newRun(stk.GetId(), domainrun.Planning)
	plan := h.mint(stk.GetId(), runID, domainrun.PhasePlanning)
	p.mustRun(plan, "init", "-input=false")
	if out := p.mustRun(plan, "output", "-raw", "value"); out != "imported" {
		t.Fatalf("terraform output of the imported state: %q", out)
	}
	h.advance(runID, domainrun.Applying)
	p.mustRun(h.mint(stk.GetId(), runID, domainrun.PhaseApplying), "apply", "-input=false", "-auto-approve", "-var", "input=applied")
	h.advance(runID, domainrun.Finished)
	v := stateVersions(t, srv, "legacy")
	if len(v.Versions) != 2 || v.Versions[1].Serial != "8" || v.Versions[1].RunID != runID || v.Versions[1].Kind != "STATE_VERSION_KIND_WRITE" || !v.Versions[1].Current {
		t.Fatalf("versions after the apply: %+v", v.Versions)
	}

	t.Run("rollback", func(t *testing.T) {
		_, err := srv.cli(t, "state", "rollback", "legacy", "1")
		wantCLIError(t, err, "failed_precondition", "lock the stack first")
		bob := srv.token(t, "bob", apikey.RoleWriter)
		if _, err := srv.cliAs(t, bob, "stack", "lock", "legacy"); err != nil {
			t.Fatal(err)
		}
		_, err = srv.cli(t, "state", "rollback", "legacy", "1")
		wantCLIError(t, err, "failed_precondition", "lock the stack first")
		srv.mustCLI(t, "stack", "unlock", "legacy", "--force")
		srv.mustCLI(t, "stack", "lock", "legacy")

		// A run holding the stack's run lock is in progress.
		out := srv.mustCLI(t, "-o", "json", "run", "trigger", "legacy")
		var r struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if holder := getStack(t, srv.as(srv.adminToken(t)), "legacy").GetLockHolderRunId(); holder != r.ID {
			t.Fatalf("run lock holder %q, want the triggered run %s", holder, r.ID)
		}
		_, err = srv.cli(t, "state", "rollback", "legacy", "1")
		wantCLIError(t, err, "failed_precondition", "a run is in progress")
		srv.mustCLI(t, "run", "cancel", r.ID)
		if n := len(stateVersions(t, srv, "legacy").Versions); n != 2 {
			t.Fatalf("refused rollbacks left %d versions", n)
		}

		out = srv.mustCLI(t, "state", "rollback", "legacy", "1")
		if !strings.HasPrefix(out, "state version 3 restores version 1 (serial 7,") {
			t.Fatalf("state rollback printed %q", out)
		}
		v := stateVersions(t, srv, "legacy")
		if len(v.Versions) != 3 {
			t.Fatalf("versions after the rollback: %+v", v.Versions)
		}
		v3 := v.Versions[2]
		if v3.Kind != "STATE_VERSION_KIND_ROLLBACK" || v3.RolledBackFrom != "1" || v3.Actor != admin || v3.Serial != "7" || !v3.Current || v3.SHA256 != v.Versions[0].SHA256 {
			t.Fatalf("version 3: %+v", v3)
		}
		events := h.stateEvents(stk.GetId())
		if last := events[len(events)-1]; last.Type != "StateVersionWritten" || last.Metadata.Actor != admin {
			t.Fatalf("last state event %s by %s", last.Type, last.Metadata.Actor)
		}
		_, err = srv.cli(t, "state", "rollback", "legacy", "3")
		wantCLIError(t, err, "invalid_argument", "already the current version")

		// The server's http backend now serves the restored content to a run.
		reader := h.newRun(stk.GetId(), domainrun.Planning)
		status, body := getState(t, srv.url+statebackend.PathPrefix+stk.GetId(), h.mint(stk.GetId(), reader, domainrun.PhasePlanning))
		if status != http.StatusOK || !bytes.Equal(body, []byte(importedState)) {
			t.Fatalf("GET after the rollback: %d %q", status, body)
		}
		// Without credentials the backend refuses.
		status, _ = getState(t, srv.url+statebackend.PathPrefix+stk.GetId(), statebackend.Credentials{Username: "gst_nobody", Password: "x"})
		if status != http.StatusUnauthorized {
			t.Fatalf("GET with unknown credentials: %d, want 401", status)
		}
	})
}
