package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/stack"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// heldState is a state file as terraform writes it: two resources, one
// plain output and one sensitive.
const heldState = `{
  "version": 4, "terraform_version": "1.11.4", "serial": 4, "lineage": "5d2b0d2e-day2",
  "outputs": {
    "endpoint": {"value": "https://db.example.com", "type": "string"},
    "password": {"value": "s3cret-output", "type": "string", "sensitive": true}
  },
  "resources": [
    {"mode": "managed", "type": "terraform_data", "name": "db", "provider": "provider[\"terraform.io/builtin/terraform\"]",
     "instances": [{"schema_version": 0, "attributes": {"id": "1"}}]},
    {"mode": "managed", "type": "terraform_data", "name": "user", "provider": "provider[\"terraform.io/builtin/terraform\"]",
     "instances": [{"schema_version": 0, "attributes": {"id": "2"}}]}
  ],
  "check_results": null
}`

// runJSON is what -o json shows of a run.
type runJSON struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Commit  string `json:"commit"`
	Destroy bool   `json:"destroy"`
	RetryOf string `json:"retry_of"`
	History []struct {
		State string `json:"state"`
	} `json:"history"`
}

func parseRun(t *testing.T, out string) runJSON {
	t.Helper()
	var r runJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return r
}

// The day-two commands that need no run, end to end through the CLI: stack
// update, environment list and mounted files, outputs and their secrets,
// guarded stack delete, pool update and delete, and the refusals of each,
// which write nothing.
func TestDayTwoCommands(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	user := srv.token(t, "bob", apikey.RoleReader)
	unchanged := func(t *testing.T, f func()) {
		t.Helper()
		before := srv.eventCount(t)
		f()
		if after := srv.eventCount(t); after != before {
			t.Errorf("a refused command wrote %d events", after-before)
		}
	}

	t.Run("stack update", func(t *testing.T) {
		srv.mustCLI(t, "stack", "create", "app", "--repo", repo, "--label", "old")
		out := srv.mustCLI(t, "-o", "json", "stack", "update", "app", "--name", "app-eu", "--branch", "release",
			"--label", "tier=1", "--label", "team=core", "--autodeploy", "--description", "EU app")
		var s struct {
			Name, Branch, Description string
			Autodeploy                bool
			Labels                    []string
			RepositoryURL             string `json:"repository_url"`
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		if s.Name != "app-eu" || s.Branch != "release" || !s.Autodeploy || s.Description != "EU app" ||
			strings.Join(s.Labels, ",") != "team=core,tier=1" || s.RepositoryURL != repo {
			t.Errorf("after update: %+v", s)
		}
		_, err := srv.cli(t, "stack", "show", "app")
		wantCLIError(t, err, "not_found", "app")
		out = srv.mustCLI(t, "stack", "update", "app-eu", "--autodeploy=false", "--clear-labels")
		if !regexpMatch(`autodeploy\s+no`, out) || !regexpMatch(`labels\s+-`, out) || !regexpMatch(`branch\s+release`, out) {
			t.Errorf("after the second update:\n%s", out)
		}
		unchanged(t, func() {
			_, err := srv.cli(t, "stack", "update", "app-eu", "--branch", "a..b", "--tool", "tofu")
			wantCLIError(t, err, "invalid_argument", "branch")
			_, err = srv.cli(t, "stack", "update", "app-eu")
			if err == nil || !strings.Contains(err.Error(), "nothing to change") {
				t.Errorf("an update without flags: %v", err)
			}
			_, err = srv.cli(t, "stack", "update", "app-eu", "--pool", "nowhere")
			wantCLIError(t, err, "invalid_argument", "worker_pool_id")
		})
	})

	t.Run("environment and mounted files", func(t *testing.T) {
		const content = "apiVersion: v1\nkind: Config\ntoken: mounted-s3cret\n"
		srv.mustCLI(t, "stack", "create", "env", "--repo", repo)
		srv.mustCLI(t, "stack", "env", "set", "env", "TF_LOG", "info")
		srv.mustCLI(t, "stack", "env", "set", "env", "wo_TOKEN", "var-s3cret", "--secret")
		if out := srv.mustCLI(t, "stack", "env", "mount", "env", "./config//kube.yaml", "--file", writeFile(t, "kube", []byte(content))); !strings.Contains(out, "mounted config/kube.yaml on stack env (50 bytes)") {
			t.Errorf("mount: %s", out)
		}
		list := srv.mustCLI(t, "stack", "env", "list", "env")
		for _, want := range []string{`TF_LOG\s+variable\s+ALL\s+info`, `wo_TOKEN\s+secret\s+WRITE_ONLY\s+\(secret\)`, `config/kube.yaml\s+file\s+ALL\s+\(50 bytes, mounted `} {
			if !regexpMatch(want, list) {
				t.Errorf("env list lacks %q:\n%s", want, list)
			}
		}
		aligned(t, list)
		asJSON := srv.mustCLI(t, "-o", "json", "stack", "env", "list", "env")
		for _, out := range []string{list, asJSON, srv.mustCLI(t, "-o", "json", "stack", "show", "env"), srv.eventsText(t)} {
			if strings.Contains(out, "mounted-s3cret") || strings.Contains(out, "var-s3cret") {
				t.Errorf("a secret shows:\n%s", out)
			}
		}
		unchanged(t, func() {
			for path, want := range map[string]string{
				"../outside": "path", "/etc/passwd": "path", "config/": "path", "TF_LOG": "TF_LOG is the key of an environment variable",
			} {
				_, err := srv.cli(t, "stack", "env", "mount", "env", path, "--file", writeFile(t, "f", []byte("x")))
				wantCLIError(t, err, "invalid_argument", want)
			}
			big := writeFile(t, "big", []byte(strings.Repeat("x", stack.MaxFileSize+1)))
			if _, err := srv.cli(t, "stack", "env", "mount", "env", "big.bin", "--file", big); err == nil || !strings.Contains(err.Error(), "128 KiB") {
				t.Errorf("a file too large: %v", err)
			}
			_, err := srv.cli(t, "stack", "env", "set", "env", "config/kube.yaml", "x")
			wantCLIError(t, err, "invalid_argument", "key")
		})
		srv.mustCLI(t, "stack", "env", "delete", "env", "config/kube.yaml")
		srv.mustCLI(t, "stack", "env", "delete", "env", "TF_LOG")
		if list := srv.mustCLI(t, "stack", "env", "list", "env"); strings.Contains(list, "kube") || strings.Contains(list, "TF_LOG") || !strings.Contains(list, "wo_TOKEN") {
			t.Errorf("after the deletes:\n%s", list)
		}
		_, err := srv.cli(t, "stack", "env", "delete", "env", "config/kube.yaml")
		wantCLIError(t, err, "not_found", "config/kube.yaml")
	})

	t.Run("outputs and the guarded delete", func(t *testing.T) {
		out := srv.mustCLI(t, "-o", "json", "stack", "create", "db", "--repo", repo, "--import-state", writeFile(t, "db.tfstate", []byte(heldState)))
		var created struct{ ID string }
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatal(err)
		}
		admin := srv.mustCLI(t, "stack", "outputs", "db")
		if !regexpMatch(`endpoint\s+"https://db.example.com"\s+no`, admin) || !regexpMatch(`password\s+"s3cret-output"\s+yes`, admin) {
			t.Errorf("outputs for an administrator:\n%s", admin)
		}
		for _, out := range []string{mustCLIAs(t, srv, user, "stack", "outputs", "db"), mustCLIAs(t, srv, user, "-o", "json", "stack", "outputs", "db")} {
			if strings.Contains(out, "s3cret-output") || !strings.Contains(out, "db.example.com") {
				t.Errorf("outputs for a token that may not read secrets:\n%s", out)
			}
		}
		if hidden := mustCLIAs(t, srv, user, "stack", "outputs", "db"); !regexpMatch(`password\s+\(sensitive\)\s+yes`, hidden) {
			t.Errorf("the hidden output is not marked:\n%s", hidden)
		}
		var asJSON struct {
			StateVersion string `json:"state_version"`
			Outputs      []struct {
				Name   string
				Hidden bool
			}
		}
		if err := json.Unmarshal([]byte(mustCLIAs(t, srv, user, "-o", "json", "stack", "outputs", "db")), &asJSON); err != nil || asJSON.StateVersion != "1" ||
			len(asJSON.Outputs) != 2 || asJSON.Outputs[0].Hidden || !asJSON.Outputs[1].Hidden {
			t.Errorf("outputs as JSON: %+v, %v", asJSON, err)
		}
		srv.mustCLI(t, "stack", "create", "plain", "--repo", repo)
		_, err := srv.cli(t, "stack", "outputs", "plain")
		wantCLIError(t, err, "failed_precondition", "does not use managed state")

		unchanged(t, func() {
			_, err := srv.cli(t, "stack", "delete", "db")
			wantCLIError(t, err, "failed_precondition", "holds 2 resource(s)")
		})
		srv.mustCLI(t, "stack", "delete", "db", "--force")
		_, err = srv.cli(t, "stack", "show", created.ID)
		wantCLIError(t, err, "not_found", created.ID)
		if v := stateVersions(t, srv, created.ID); len(v.Versions) != 1 {
			t.Errorf("the state versions of the deleted stack: %+v", v)
		}
		if pulled := srv.mustCLI(t, "state", "pull", created.ID, "--version", "1"); pulled != heldState {
			t.Errorf("pulled state of the deleted stack:\n%s", pulled)
		}
		_, err = srv.cli(t, "state", "versions", "db")
		wantCLIError(t, err, "not_found", "db")
		events := srv.eventsText(t)
		if !strings.Contains(events, `"forced": true`) || !strings.Contains(events, `"managed_resources": 2`) {
			t.Errorf("the StackDeleted event does not record the forced delete:\n%s", events)
		}
		srv.mustCLI(t, "stack", "delete", "plain")
	})

	t.Run("pool update and delete", func(t *testing.T) {
		poolID, _, _ := createPoolCLI(t, srv, "eu")
		out := srv.mustCLI(t, "pool", "update", "eu", "--description", "EU workers", "--label", "region=eu", "--drift-run-limit", "2")
		for _, want := range []string{`description\s+EU workers`, `labels\s+region=eu`, `drift run limit\s+2`} {
			if !regexpMatch(want, out) {
				t.Errorf("pool update lacks %q:\n%s", want, out)
			}
		}
		if out := srv.mustCLI(t, "pool", "update", "eu", "--clear-labels"); !regexpMatch(`labels\s+-`, out) || !regexpMatch(`description\s+EU workers`, out) {
			t.Errorf("after --clear-labels:\n%s", out)
		}
		srv.mustCLI(t, "stack", "create", "on-eu", "--repo", repo, "--pool", "eu")
		unchanged(t, func() {
			_, err := srv.cli(t, "pool", "update", "eu", "--drift-run-limit", "-1")
			wantCLIError(t, err, "invalid_argument", "drift_detection_run_limit")
			_, err = srv.cli(t, "pool", "delete", "eu")
			wantCLIError(t, err, "failed_precondition", "used by stacks on-eu")
			_, err = srv.cli(t, "pool", "delete", "nowhere")
			wantCLIError(t, err, "not_found", "nowhere")
		})
		srv.mustCLI(t, "stack", "update", "on-eu", "--pool", "wp_public")
		srv.mustCLI(t, "pool", "delete", "eu")
		_, err := srv.cli(t, "pool", "show", poolID)
		wantCLIError(t, err, "not_found", poolID)
		createPoolCLI(t, srv, "EU") // the name is free again

		csr, _ := rsaCSR(t, 2048)
		srv.mustCLI(t, "pool", "reset", "wp_public", "--csr", writeFile(t, "public.csr", []byte(csr)))
		unchanged(t, func() {
			_, err := srv.cli(t, "pool", "delete", "wp_public")
			wantCLIError(t, err, "failed_precondition", "public")
		})
	})

	t.Run("runs that cannot be retried or replanned", func(t *testing.T) {
		srv.mustCLI(t, "stack", "create", "runs", "--repo", repo)
		queued := parseRun(t, srv.mustCLI(t, "-o", "json", "run", "trigger", "runs"))
		unchanged(t, func() {
			_, err := srv.cli(t, "run", "retry", queued.ID)
			wantCLIError(t, err, "failed_precondition", "only a run that FAILED or was STOPPED is retried")
			_, err = srv.cli(t, "run", "replan", queued.ID)
			wantCLIError(t, err, "failed_precondition", "Replan is not allowed in status")
			_, err = srv.cli(t, "run", "retry", "run_0123456789abcdef")
			wantCLIError(t, err, "not_found", "")
			_, err = srv.cli(t, "run", "trigger", "runs", "--proposed", "--destroy")
			wantCLIError(t, err, "invalid_argument", "destroy")
		})
	})
}

// mustCLIAs runs the command line with token and fails the test on an error.
func mustCLIAs(t *testing.T, srv *testServer, token string, args ...string) string {
	t.Helper()
	out, err := srv.cliAs(t, token, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dayTwoConfig reads a mounted file while planning and has a plain and a
// sensitive output.
const dayTwoConfig = `
resource "terraform_data" "app" {
  input = trimspace(file("${path.module}/config/app.txt"))
}

output "plain" {
  value = "visible"
}

output "mounted" {
  value     = terraform_data.app.output
  sensitive = true
}
`

// dayTwoRepo makes a repository holding dayTwoConfig and returns its URL,
// its first commit, and a function that adds a commit.
func dayTwoRepo(t *testing.T) (url, first string, commit func() string) {
	t.Helper()
	r := newTestRepo(t, dayTwoConfig)
	return r.url(), r.head(), func() string {
		r.git("commit", "-q", "--allow-empty", "-m", "later")
		return r.head()
	}
}

// The day-two run commands on a real launcher and real terraform: a mounted
// file read by the plan, a replan, sensitive outputs, the guarded delete of
// a stack holding resources, a destroy run confirmed like any tracked run,
// and a retry at the failed run's commit.
func TestDayTwoRunsOnALauncher(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "d2", 1)
	c := srv.as(srv.adminToken(t))
	repo, first, commit := dayTwoRepo(t)
	appFile := writeFile(t, "app.txt", []byte("mounted-value\n"))
	newStack := func(name string, extra ...string) string {
		out := srv.mustCLI(t, append([]string{"-o", "json", "stack", "create", name, "--repo", repo, "--pool", "d2", "--managed-state"}, extra...)...)
		var s struct{ ID string }
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		srv.mustCLI(t, "stack", "env", "mount", name, "config/app.txt", "--file", appFile)
		return s.ID
	}
	states := func(r runJSON) string {
		var out []string
		for _, h := range r.History {
			out = append(out, strings.TrimPrefix(h.State, "RUN_STATE_"))
		}
		return strings.Join(out, " ")
	}
	show := func(id string) runJSON { return parseRun(t, srv.mustCLI(t, "-o", "json", "run", "show", id)) }

	t.Run("replan, outputs and the guarded delete", func(t *testing.T) {
		id := newStack("apps")
		run := parseRun(t, srv.mustCLI(t, "-o", "json", "run", "trigger", "apps")).ID
		c.waitRunState(t, run, unconfirmed)
		workspace := filepath.Join(strings.TrimPrefix(srv.blobURL, "file://"), executor.WorkspaceKey(run))
		before, err := os.ReadFile(workspace)
		if err != nil {
			t.Fatalf("no saved workspace while UNCONFIRMED: %v", err)
		}
		if r := parseRun(t, srv.mustCLI(t, "-o", "json", "run", "replan", run)); !strings.Contains(states(r), "UNCONFIRMED REPLAN_REQUESTED READY") {
			t.Errorf("after run replan: %s", states(r))
		}
		c.waitRunState(t, run, unconfirmed)
		r := show(run)
		if got := strings.Count(states(r), "PLANNING"); got != 2 {
			t.Errorf("planned %d times: %s", got, states(r))
		}
		after, err := os.ReadFile(workspace)
		if err != nil || string(after) == string(before) {
			t.Errorf("the second plan's workspace (%v) is the first one's", err)
		}
		srv.mustCLI(t, "run", "confirm", run)
		c.waitRunState(t, run, finished)

		outputs := srv.mustCLI(t, "stack", "outputs", "apps")
		if !regexpMatch(`mounted\s+"mounted-value"\s+yes`, outputs) || !regexpMatch(`plain\s+"visible"\s+no`, outputs) {
			t.Errorf("the outputs the plan made of the mounted file:\n%s", outputs)
		}
		if hidden := mustCLIAs(t, srv, srv.token(t, "bob", apikey.RoleReader), "stack", "outputs", "apps"); strings.Contains(hidden, "mounted-value") {
			t.Errorf("a sensitive output shows to a token that may not read secrets:\n%s", hidden)
		}
		if logs := srv.mustCLI(t, "run", "logs", run); !strings.Contains(logs, "Mounted config/app.txt (14 bytes)") {
			t.Errorf("the run's log does not show the mounted file:\n%s", logs)
		}

		_, err = srv.cli(t, "stack", "delete", "apps")
		wantCLIError(t, err, "failed_precondition", "holds 1 resource(s)")
		srv.mustCLI(t, "stack", "delete", "apps", "--force")
		if v := stateVersions(t, srv, id); len(v.Versions) != 1 {
			t.Errorf("the state versions of the deleted stack: %+v", v)
		}
		if pulled := srv.mustCLI(t, "state", "pull", id); !strings.Contains(pulled, `"terraform_data"`) {
			t.Errorf("the state of the deleted stack:\n%s", pulled)
		}
	})

	t.Run("destroy", func(t *testing.T) {
		newStack("doomed", "--autodeploy")
		c.waitRunState(t, parseRun(t, srv.mustCLI(t, "-o", "json", "run", "trigger", "doomed")).ID, finished)
		srv.mustCLI(t, "stack", "update", "doomed", "--autodeploy=false")
		run := parseRun(t, srv.mustCLI(t, "-o", "json", "run", "trigger", "doomed", "--destroy"))
		if !run.Destroy {
			t.Errorf("the triggered run is not a destroy run: %+v", run)
		}
		c.waitRunState(t, run.ID, unconfirmed)
		if out := srv.mustCLI(t, "run", "show", run.ID); !regexpMatch(`destroy\s+yes`, out) {
			t.Errorf("run show of a destroy run:\n%s", out)
		}
		srv.mustCLI(t, "run", "confirm", run.ID)
		c.waitRunState(t, run.ID, finished)
		if s := states(show(run.ID)); !strings.Contains(s, "PREPARING_APPLY DESTROYING FINISHED") || strings.Contains(s, "APPLYING") {
			t.Errorf("the destroy run went through %s", s)
		}
		if logs := srv.mustCLI(t, "run", "logs", run.ID); !strings.Contains(logs, "1 destroyed") {
			t.Errorf("the destroy run's log:\n%s", logs)
		}
		if n := srv.stateVersions(t, "doomed"); n != 2 {
			t.Errorf("%d state versions after the destroy, want 2", n)
		}
		srv.mustCLI(t, "stack", "delete", "doomed") // nothing left: no --force
	})

	t.Run("retry at the same commit", func(t *testing.T) {
		c.createStack(t, &gantryv1.CreateStackRequest{Name: "flaky", RepositoryUrl: repo, WorkerPoolId: pool.id, Autodeploy: true,
			Hooks: &gantryv1.Hooks{BeforePlan: []string{`test "$GO" = yes || { echo "GO is not yes"; exit 3; }`}}})
		srv.mustCLI(t, "stack", "env", "mount", "flaky", "config/app.txt", "--file", appFile)
		failed := parseRun(t, srv.mustCLI(t, "-o", "json", "run", "trigger", "flaky"))
		c.waitRunState(t, failed.ID, gantryv1.RunState_RUN_STATE_FAILED)
		head := commit() // the branch moves on; the retry stays at the failed run's commit
		srv.mustCLI(t, "stack", "env", "set", "flaky", "GO", "yes")
		retry := parseRun(t, srv.mustCLI(t, "-o", "json", "run", "retry", failed.ID))
		if retry.ID == failed.ID || retry.RetryOf != failed.ID || retry.Commit != first || failed.Commit != first || head == first {
			t.Errorf("retry %+v of %+v (head now %s)", retry, failed, head)
		}
		c.waitRunState(t, retry.ID, finished)
		if out := srv.mustCLI(t, "run", "show", retry.ID); !regexpMatch(`retry of\s+`+failed.ID, out) {
			t.Errorf("run show of a retry:\n%s", out)
		}
		_, err := srv.cli(t, "run", "retry", retry.ID)
		wantCLIError(t, err, "failed_precondition", "Retry is not allowed in status FINISHED")
	})
}

var (
	unconfirmed = gantryv1.RunState_RUN_STATE_UNCONFIRMED
	finished    = gantryv1.RunState_RUN_STATE_FINISHED
)
