package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	domainrun "github.com/gantryhq/gantry/domain/run"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// cliResult is what one command line printed and how it exited.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliAll runs the command line as the admin (like cli) and returns both
// outputs, whatever the exit code; runEndTimeout bounds it, since some
// commands wait for real runs.
func (s *testServer) cliAll(t testing.TB, vars map[string]string, args ...string) cliResult {
	t.Helper()
	all := map[string]string{auth.ConfigDirEnv: s.configDir}
	for k, v := range vars {
		all[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), runEndTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, env(all), &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), code}
}

// progressLine matches a state line of --wait's progress: elapsed seconds,
// the state, then details.
var progressLine = regexp.MustCompile(`^ *(\d+\.\d\d)s  ([A-Z_]+) *(.*)$`)

// progressStates returns the states of the progress lines in stderr, in
// order, with the details and elapsed seconds of each, checking that
// elapsed times never go back.
func progressStates(t *testing.T, stderr string) (states []string, details map[string]string, elapsed map[string]float64) {
	t.Helper()
	details, elapsed = map[string]string{}, map[string]float64{}
	last := -1.0
	for _, l := range strings.Split(stderr, "\n") {
		m := progressLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		if s < last {
			t.Errorf("elapsed time went back at %q", l)
		}
		last = s
		states = append(states, m[2])
		details[m[2]], elapsed[m[2]] = m[3], s
	}
	return states, details, elapsed
}

// --wait on real launchers and terraform: it shows each state as it
// happens with the phases' output, ends at UNCONFIRMED with the plan's
// summary and the command that confirms it, and confirm --wait shows the
// apply through to its end. run show then tells which worker ran each phase.
func TestWaitShowsProgressOnRealRuns(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "progress", 1)
	c := srv.as(srv.adminToken(t))
	repo := demoRepo(t)
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "auto", RepositoryUrl: repo, WorkerPoolId: pool.id, Autodeploy: true, ManagedState: true})
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "manual", RepositoryUrl: repo, WorkerPoolId: pool.id, ManagedState: true})

	t.Run("trigger --wait --logs", func(t *testing.T) {
		r := srv.cliAll(t, nil, "run", "trigger", "auto", "--wait", "--logs")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		states, details, _ := progressStates(t, r.stderr)
		want := []string{"QUEUED", "READY", "PREPARING", "INITIALIZING", "PLANNING", "APPLYING", "FINISHED"}
		if strings.Join(states, " ") != strings.Join(want, " ") {
			t.Fatalf("progress states %v, want %v\n%s", states, want, r.stderr)
		}
		if !strings.HasPrefix(details["PREPARING"], "on wkr_") || !strings.Contains(details["FINISHED"], "plan: 2 to add, 0 to change, 0 to destroy") {
			t.Errorf("progress details %q", details)
		}
		for _, s := range []string{"Terraform has been successfully initialized", "Plan: 2 to add", "Apply complete! Resources: 2 added"} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("the phases' output lacks %q:\n%s", s, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "\x1b[") || strings.Contains(r.stdout, "\x1b[") {
			t.Errorf("colour codes went into a pipe:\n%q", r.stderr)
		}
		// The output shows where the logs belong: apply output after the APPLYING line.
		if strings.Index(r.stderr, "Apply complete!") < strings.Index(r.stderr, "APPLYING") {
			t.Errorf("the apply's output came before APPLYING:\n%s", r.stderr)
		}
		if !regexpMatch(`(?m)^state +FINISHED$`, r.stdout) || !regexpMatch(`(?m)^plan +2 to add, 0 to change, 0 to destroy$`, r.stdout) {
			t.Errorf("the run printed at the end:\n%s", r.stdout)
		}
	})

	t.Run("task --wait shows the command's output", func(t *testing.T) {
		r := srv.cliAll(t, nil, "task", "auto", "--wait", "--", "terraform", "state", "list")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "terraform_data.greeting") || !strings.Contains(r.stderr, "terraform_data.run") {
			t.Errorf("the task's output is not shown:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, "Terraform has been successfully initialized") {
			t.Errorf("without --logs, the output of INITIALIZING is shown too:\n%s", r.stderr)
		}
		if states, _, _ := progressStates(t, r.stderr); len(states) == 0 || states[len(states)-1] != "FINISHED" {
			t.Errorf("progress states %v", states)
		}
	})

	var runID string
	t.Run("trigger --wait ends at UNCONFIRMED with the plan", func(t *testing.T) {
		r := srv.cliAll(t, nil, "-o", "json", "run", "trigger", "manual", "--wait")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		var shown gantryv1.Run
		if err := protojson.Unmarshal([]byte(r.stdout), &shown); err != nil {
			t.Fatalf("stdout is not the run as JSON: %v\n%s", err, r.stdout)
		}
		runID = shown.GetId()
		if shown.GetState() != gantryv1.RunState_RUN_STATE_UNCONFIRMED || shown.GetPlan().GetAdd() != 2 || shown.GetPlan().GetDestroy() != 0 {
			t.Fatalf("--wait printed a %s run with plan %v", shown.GetState(), shown.GetPlan())
		}
		states, details, _ := progressStates(t, r.stderr)
		if states[len(states)-1] != "UNCONFIRMED" ||
			!strings.Contains(details["UNCONFIRMED"], "plan: 2 to add, 0 to change, 0 to destroy; confirm with: gantry run confirm "+runID) {
			t.Errorf("progress %v %q", states, details)
		}
	})
	if runID == "" {
		t.FailNow()
	}

	t.Run("logs --follow of an UNCONFIRMED run ends and says so", func(t *testing.T) {
		r := srv.cliAll(t, nil, "run", "logs", runID, "--follow")
		if r.code != 0 || !strings.Contains(r.stdout, "Plan: 2 to add") || strings.Contains(r.stdout, "\x1b[") {
			t.Fatalf("exit %d, stdout:\n%s", r.code, r.stdout)
		}
		if want := "run " + runID + " waits for a confirmation: gantry run confirm " + runID; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q, want it to contain %q", r.stderr, want)
		}
	})

	t.Run("confirm --wait --logs shows the apply", func(t *testing.T) {
		r := srv.cliAll(t, nil, "run", "confirm", runID, "--wait", "--logs")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		states, _, _ := progressStates(t, r.stderr)
		want := []string{"CONFIRMED", "PREPARING_APPLY", "APPLYING", "FINISHED"}
		if strings.Join(states, " ") != strings.Join(want, " ") {
			t.Errorf("progress states %v, want %v\n%s", states, want, r.stderr)
		}
		if !strings.Contains(r.stderr, "Apply complete! Resources: 2 added") || strings.Contains(r.stderr, "Terraform has been successfully initialized") {
			t.Errorf("want the apply's output and not the plan's:\n%s", r.stderr)
		}
		if !regexpMatch(`(?m)^state +FINISHED$`, r.stdout) {
			t.Errorf("printed:\n%s", r.stdout)
		}
	})

	t.Run("show names the worker of each phase", func(t *testing.T) {
		out := srv.mustCLI(t, "run", "show", runID)
		if !regexpMatch(`(?m)^plan +2 to add, 0 to change, 0 to destroy$`, out) {
			t.Errorf("no plan summary:\n%s", out)
		}
		for _, state := range []string{"PREPARING", "PLANNING", "UNCONFIRMED", "PREPARING_APPLY", "APPLYING", "FINISHED"} {
			if !regexpMatch(`(?m)^`+state+` +\S+ +\S+ +wkr_\w+ `, out) {
				t.Errorf("the %s entry names no worker:\n%s", state, out)
			}
		}
		if !regexpMatch(`(?m)^CONFIRMED +\S+ +user:admin +- `, out) {
			t.Errorf("the CONFIRMED entry names a worker:\n%s", out)
		}
	})
}

// --wait decides from the run's events: it prints each state as the event
// that makes it arrives, and returns on the event that settles the run with
// the run as that event left it, the stop note included.
func TestWaitFollowsTheRunsEvents(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "demo", "--repo", repo)
	admin := srv.as(srv.adminToken(t))

	done := make(chan cliResult, 1)
	go func() { done <- srv.cliAll(t, nil, "run", "trigger", "demo", "--proposed", "--wait") }()
	var id string
	await.Until(t, e2eTimeout, "the run to be listed", func() bool {
		resp, err := admin.runs.ListRuns(testCtx(t), connect.NewRequest(&gantryv1.ListRunsRequest{Stack: "demo"}))
		if err != nil || len(resp.Msg.GetRuns()) == 0 {
			return false
		}
		id = resp.Msg.GetRuns()[0].GetId()
		return true
	})
	now := time.Now()
	appendRun(t, srv, id, domainrun.RunAssigned{WorkerID: "wkr_e2e", PoolID: "wp_public", At: now, Actor: "system:test"})
	appendRun(t, srv, id, domainrun.RunPhaseStarted{Phase: domainrun.PhasePreparing, At: now.Add(1500 * time.Millisecond), Actor: "wkr_e2e"})
	srv.mustCLI(t, "run", "stop", id, "--note", "wrong branch")
	select {
	case r := <-done:
		t.Fatalf("--wait returned while the run was PREPARING: %+v", r)
	default:
	}
	appendRun(t, srv, id, domainrun.RunPhaseFinished{Phase: domainrun.PhasePreparing, ExitCode: 130, At: now.Add(2 * time.Second), Actor: "wkr_e2e"},
		domainrun.RunStopped{StackID: getRun(t, admin, id).GetStackId(), WorkerID: "wkr_e2e", Note: "stop requested by user:admin", At: now.Add(2 * time.Second), Actor: "wkr_e2e"})

	var r cliResult
	select {
	case r = <-done:
	case <-time.After(e2eTimeout):
		t.Fatal("--wait did not return")
	}
	if r.code != 1 || !strings.Contains(r.stderr, "run "+id+" ended STOPPED") {
		t.Fatalf("exit %d, stderr %q: want a failure naming the STOPPED run", r.code, r.stderr)
	}
	states, details, elapsed := progressStates(t, r.stderr)
	if strings.Join(states, " ") != "QUEUED READY PREPARING STOPPED" {
		t.Fatalf("progress states %v\n%s", states, r.stderr)
	}
	if details["PREPARING"] != "on wkr_e2e" || details["STOPPED"] != "stop requested by user:admin" {
		t.Errorf("details %q", details)
	}
	// Elapsed times are the events' own, from the run's QUEUED.
	if elapsed["QUEUED"] != 0 || elapsed["PREPARING"] < 1.5 || elapsed["STOPPED"]-elapsed["PREPARING"] < 0.49 {
		t.Errorf("elapsed %v: want PREPARING at least 1.5 s after QUEUED and STOPPED 0.5 s later", elapsed)
	}
	// The run printed is the one the last event left, never an older read.
	for _, want := range []string{`(?m)^state +STOPPED$`, `(?m)^stop requested by +user:admin$`, `(?m)^stop note +wrong branch$`,
		`(?m)^PREPARING +\S+ +wkr_e2e +wkr_e2e +-$`, `(?m)^STOPPED +\S+ +wkr_e2e +wkr_e2e +stop requested by user:admin$`} {
		if !regexpMatch(want, r.stdout) {
			t.Errorf("printed run does not match %s:\n%s", want, r.stdout)
		}
	}
}

// A missing token, a refused one and a server that is down each say what
// to do.
func TestConnectionAndCredentialHints(t *testing.T) {
	srv := startServer(t)
	empty := t.TempDir()
	r := srv.cliAll(t, map[string]string{auth.ConfigDirEnv: empty, "GANTRY_SERVER": srv.url}, "stack", "list")
	if want := "no API token was given: pass --token, set GANTRY_TOKEN, or keep one in " + filepath.Join(empty, "credentials.json"); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("without a token: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	r = srv.cliAll(t, map[string]string{"GANTRY_TOKEN": "not-a-token"}, "stack", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "the server refused the token") {
		t.Errorf("with a bad token: exit %d, stderr %q", r.code, r.stderr)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	r = srv.cliAll(t, map[string]string{"GANTRY_SERVER": down}, "stack", "list")
	if want := "cannot reach the Gantry server at " + down; r.code != 1 || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("server down: exit %d, stderr %q, want one line with %q", r.code, r.stderr, want)
	}
}
