package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	domainrun "github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

// fakeLauncher does with a pool token what a launcher does with a run's log: lines published
// through JetStream on the pool's NATS connection, full phase logs stored through the worker
// API. Run events are appended directly, standing in for the gateway.
type fakeLauncher struct {
	t       *testing.T
	srv     *testServer
	poolID  string
	js      jetstream.JetStream
	workers *workerclient.Client
}

func newFakeLauncher(t *testing.T, srv *testServer, poolName string) *fakeLauncher {
	t.Helper()
	poolID, token, key := createPoolCLI(t, srv, poolName)
	tok := checkToken(t, srv, token, poolID, key)
	nc, err := nats.Connect(tok.NATSURL, bus.PoolCredentials(tok.PoolID, tok.PoolSecret))
	if err != nil {
		t.Fatalf("launcher connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	return &fakeLauncher{t: t, srv: srv, poolID: tok.PoolID, js: js, workers: workerclient.New(tok.ServerURL, tok.PoolID, tok.PoolSecret, hc)}
}

// appendRun appends events to run runID at its current version.
func appendRun(t *testing.T, srv *testServer, runID string, events ...any) {
	t.Helper()
	ctx := testCtx(t)
	stored, err := srv.store.Load(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, int64(len(stored)), events...); err != nil {
		t.Fatalf("append to %s: %v", runID, err)
	}
}

func (l *fakeLauncher) publish(runID string, phase domainrun.Phase, lines ...string) {
	l.t.Helper()
	for _, line := range lines {
		msg := nats.NewMsg(protocol.RunLogsSubject(l.poolID, runID))
		msg.Header.Set(protocol.HeaderPhase, string(phase))
		msg.Data = []byte(line)
		if _, err := l.js.PublishMsg(testCtx(l.t), msg); err != nil {
			l.t.Fatalf("publish a line of %s: %v", runID, err)
		}
	}
}

// phase runs a whole phase: start, lines, full log, finish.
func (l *fakeLauncher) phase(runID string, phase domainrun.Phase, lines ...string) {
	l.t.Helper()
	appendRun(l.t, l.srv, runID, domainrun.RunPhaseStarted{Phase: phase, At: time.Now(), Actor: "wkr_e2e"})
	l.publish(runID, phase, lines...)
	if err := l.workers.StorePhaseLog(testCtx(l.t), runID, phase, []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		l.t.Fatalf("store the %s log: %v", phase, err)
	}
	appendRun(l.t, l.srv, runID, domainrun.RunPhaseFinished{Phase: phase, At: time.Now(), Actor: "wkr_e2e"})
}

func TestRunLogsCommand(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	l := newFakeLauncher(t, srv, "logs")
	srv.mustCLI(t, "stack", "create", "demo", "--repo", repo, "--pool", l.poolID)
	admin := srv.as(srv.adminToken(t))
	id := trigger(t, admin, "demo", proposed).GetId()
	appendRun(t, srv, id, domainrun.RunAssigned{WorkerID: "wkr_e2e", PoolID: l.poolID, At: time.Now(), Actor: "system:test"})

	l.phase(id, domainrun.PhaseInitializing, "Initializing the backend...", "Terraform has been successfully initialized!")
	appendRun(t, srv, id, domainrun.RunPhaseStarted{Phase: domainrun.PhasePlanning, At: time.Now(), Actor: "wkr_e2e"})
	l.publish(id, domainrun.PhasePlanning, "No changes. Your infrastructure matches the configuration.")

	want := "Initializing the backend...\nTerraform has been successfully initialized!\nNo changes. Your infrastructure matches the configuration.\n"
	if got := srv.mustCLI(t, "run", "logs", id); got != want {
		t.Fatalf("run logs while planning:\n%s\nwant:\n%s", got, want)
	}

	// A follower started now ends when the run does, with every line once.
	followed := make(chan string, 1)
	go func() {
		out, err := srv.cli(t, "run", "logs", id, "--follow")
		if err != nil {
			out = "error: " + err.Error()
		}
		followed <- out
	}()
	l.publish(id, domainrun.PhasePlanning, "plan done")
	if err := l.workers.StorePhaseLog(testCtx(t), id, domainrun.PhasePlanning,
		[]byte("No changes. Your infrastructure matches the configuration.\nplan done\n")); err != nil {
		t.Fatal(err)
	}
	appendRun(t, srv, id, domainrun.RunPhaseFinished{Phase: domainrun.PhasePlanning, At: time.Now(), Actor: "wkr_e2e"},
		domainrun.RunFinished{StackID: getRun(t, admin, id).GetStackId(), At: time.Now(), Actor: "wkr_e2e"})
	want += "plan done\n"
	select {
	case got := <-followed:
		if got != want {
			t.Fatalf("run logs --follow:\n%s\nwant:\n%s", got, want)
		}
	case <-time.After(e2eTimeout):
		t.Fatal("run logs --follow did not end with the run")
	}

	var lines []logLine
	for _, s := range strings.Split(strings.TrimSpace(srv.mustCLI(t, "-o", "json", "run", "logs", id)), "\n") {
		var ll logLine
		if err := json.Unmarshal([]byte(s), &ll); err != nil {
			t.Fatalf("line %q: %v", s, err)
		}
		lines = append(lines, ll)
	}
	if len(lines) != 4 || lines[0] != (logLine{"INITIALIZING", "Initializing the backend..."}) || lines[3] != (logLine{"PLANNING", "plan done"}) {
		t.Fatalf("run logs -o json: %+v", lines)
	}

	// The worker API refuses more uploads now that the run has ended.
	err := l.workers.StorePhaseLog(testCtx(t), id, domainrun.PhasePlanning, []byte("late\n"))
	if !strings.Contains(err.Error(), "409") {
		t.Fatalf("upload after the end: %v, want 409", err)
	}
	if _, err := srv.cli(t, "run", "logs", "run_nosuchrun"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("logs of an unknown run: %v", err)
	}
}

func TestTriggerWait(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "demo", "--repo", repo)
	admin := srv.as(srv.adminToken(t))

	type result struct {
		out string
		err error
	}
	// start runs the command in the background and returns the new run's id, once listed.
	start := func(known int, args ...string) (string, <-chan result) {
		t.Helper()
		done := make(chan result, 1)
		go func() {
			out, err := srv.cli(t, args...)
			done <- result{out, err}
		}()
		deadline := time.Now().Add(e2eTimeout)
		for {
			resp, err := admin.runs.ListRuns(testCtx(t), connect.NewRequest(&gantryv1.ListRunsRequest{Stack: "demo"}))
			if err != nil {
				t.Fatal(err)
			}
			if runs := resp.Msg.GetRuns(); len(runs) > known {
				return runs[0].GetId(), done
			}
			select {
			case r := <-done:
				t.Fatalf("%v ended before its run was listed: %q, %v", args, r.out, r.err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: no run was listed", args)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	finished := func(done <-chan result) result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(e2eTimeout):
			t.Fatal("--wait did not return")
			return result{}
		}
	}

	id, done := start(0, "run", "trigger", "demo", "--proposed", "--wait")
	srv.mustCLI(t, "run", "cancel", id)
	r := finished(done)
	if r.err == nil || !strings.Contains(r.err.Error(), "run "+id+" ended CANCELED") {
		t.Fatalf("--wait on a canceled run: %v, want an error naming the run and CANCELED", r.err)
	}
	if !strings.Contains(r.out, id) || !strings.Contains(r.out, "CANCELED") {
		t.Fatalf("--wait printed:\n%s", r.out)
	}

	id, done = start(1, "task", "demo", "--wait", "-o", "json", "--", "terraform", "state", "list")
	appendRun(t, srv, id, domainrun.RunAssigned{WorkerID: "wkr_e2e", PoolID: "wp_public", At: time.Now(), Actor: "system:test"})
	appendRun(t, srv, id, domainrun.RunPhaseStarted{Phase: domainrun.PhasePerforming, At: time.Now(), Actor: "wkr_e2e"})
	select {
	case r := <-done:
		t.Fatalf("--wait returned while the task was PERFORMING: %q, %v", r.out, r.err)
	default:
	}
	appendRun(t, srv, id, domainrun.RunPhaseFinished{Phase: domainrun.PhasePerforming, At: time.Now(), Actor: "wkr_e2e"},
		domainrun.RunFinished{StackID: getRun(t, admin, id).GetStackId(), At: time.Now(), Actor: "wkr_e2e"})
	r = finished(done)
	if r.err != nil {
		t.Fatalf("--wait on a finished task: %v", r.err)
	}
	var shown gantryv1.Run
	if err := protojson.Unmarshal([]byte(r.out), &shown); err != nil {
		t.Fatalf("--wait -o json printed %q: %v", r.out, err)
	}
	if shown.GetId() != id || shown.GetState() != gantryv1.RunState_RUN_STATE_FINISHED {
		t.Fatalf("--wait printed run %s in %s", shown.GetId(), shown.GetState())
	}
}
