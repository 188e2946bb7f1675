package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// logsEnv is a real event store, a mem:// bucket, an embedded NATS with the run logs stream,
// and a RunService serving StreamRunLogs over HTTP.
type logsEnv struct {
	t       *testing.T
	store   *eventstore.Store
	objects *objstore.Store
	js      jetstream.JetStream
	client  gantryv1connect.RunServiceClient
	version map[string]int64
	seq     int
}

func newLogsEnv(t *testing.T) *logsEnv {
	t.Helper()
	ctx := context.Background()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	db, store := testenv.EventStore(t, reg)
	watcher := eventstore.NewWatcher(db, nil)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = watcher.Run(wctx) }()
	t.Cleanup(func() { cancel(); <-done })

	objects := testenv.ObjectStore(t, "mem://", testenv.Keeper(t))
	n := testenv.NATS(t)
	nc := n.Connect(t, "test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureRunLogsStream(ctx, js, 0, 1); err != nil {
		t.Fatal(err)
	}
	logs, err := NewRunLogs(RunLogsConfig{Aggregates: testenv.Aggregates(t, store), Objects: objects, JetStream: js, Changes: watcher, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc := NewRunService(nil, nil, nil, nil).WithLogs(logs)
	route := svc.Route()
	mux := http.NewServeMux()
	mux.Handle(route.Path, route.Handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &logsEnv{t: t, store: store, objects: objects, js: js, client: gantryv1connect.NewRunServiceClient(srv.Client(), srv.URL), version: map[string]int64{}}
}

func (e *logsEnv) append(runID string, events ...any) {
	e.t.Helper()
	if _, err := e.store.Append(context.Background(), eventstore.Stream{Type: eventstore.StreamRun, ID: runID}, e.version[runID], events...); err != nil {
		e.t.Fatal(err)
	}
	e.version[runID] += int64(len(events))
}

// newRun appends a run assigned to a worker.
func (e *logsEnv) newRun() string {
	e.seq++
	id := fmt.Sprintf("run_logs%d_%d", time.Now().UnixNano(), e.seq)
	at := time.Now().UTC()
	e.append(id,
		run.RunQueued{RunID: id, StackID: "stk_logs", Type: run.Tracked, Commit: "0123456789abcdef0123456789abcdef01234567", At: at, Actor: "user:test"},
		run.RunReady{At: at, Actor: "system:test"},
		run.RunAssigned{WorkerID: "wkr_1", PoolID: "wp_1", At: at, Actor: "system:test"})
	return id
}

// phase runs a phase as a launcher does: lines published and acknowledged, the full log
// stored, then the phase reported finished.
func (e *logsEnv) phase(runID string, phase run.Phase, lines ...string) {
	e.t.Helper()
	e.startPhase(runID, phase)
	e.publish(runID, phase, lines...)
	e.finishPhase(runID, phase, lines...)
}

func (e *logsEnv) startPhase(runID string, phase run.Phase) {
	e.append(runID, run.RunPhaseStarted{Phase: phase, At: time.Now(), Actor: "wkr_1"})
}

func (e *logsEnv) publish(runID string, phase run.Phase, lines ...string) {
	e.t.Helper()
	for _, line := range lines {
		msg := nats.NewMsg(protocol.RunLogsSubject("wp_1", runID))
		msg.Header.Set(protocol.HeaderPhase, string(phase))
		msg.Data = []byte(line)
		if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *logsEnv) finishPhase(runID string, phase run.Phase, lines ...string) {
	e.t.Helper()
	full := strings.Join(lines, "\n") + "\n"
	if err := e.objects.WriteEncrypted(context.Background(), executor.PhaseLogKey(runID, phase), []byte(full), "text/plain"); err != nil {
		e.t.Fatal(err)
	}
	e.append(runID, run.RunPhaseFinished{Phase: phase, At: time.Now(), Actor: "wkr_1"})
}

func (e *logsEnv) open(ctx context.Context, runID string, follow bool) *connect.ServerStreamForClient[gantryv1.StreamRunLogsResponse] {
	e.t.Helper()
	s, err := e.client.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{Run: runID, Follow: follow}))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

func readAll(t *testing.T, s *connect.ServerStreamForClient[gantryv1.StreamRunLogsResponse]) []string {
	t.Helper()
	var got []string
	for s.Receive() {
		for _, l := range s.Msg().GetLines() {
			got = append(got, l.GetPhase()+":"+l.GetText())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream ended with %v after %v", err, got)
	}
	return got
}

func equalLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A phase log stored in clear, before logs were encrypted at rest, is still shown; the
// encrypted ones show as they were written.
func TestStreamRunLogsOfLogsStoredBeforeEncryption(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	e.startPhase(id, run.PhaseInitializing)
	if err := executor.StorePhaseLog(context.Background(), e.objects.Bucket(), id, run.PhaseInitializing, []byte("old 1\nold 2\n")); err != nil {
		t.Fatal(err)
	}
	e.append(id, run.RunPhaseFinished{Phase: run.PhaseInitializing, At: time.Now(), Actor: "wkr_1"})
	e.phase(id, run.PhasePlanning, "new 1")
	raw, err := e.objects.Bucket().ReadAll(context.Background(), executor.PhaseLogKey(id, run.PhasePlanning))
	if err != nil || bytes.Contains(raw, []byte("new 1")) {
		t.Fatalf("the stored PLANNING log is not ciphertext: %q, %v", raw, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	equalLines(t, readAll(t, e.open(ctx, id, false)), "INITIALIZING:old 1", "INITIALIZING:old 2", "PLANNING:new 1")
}

func TestStreamRunLogsWithoutFollow(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	e.phase(id, run.PhaseInitializing, "init 1", "init 2")
	e.startPhase(id, run.PhasePlanning)
	e.publish(id, run.PhasePlanning, "plan 1", "")
	// The bucket's copy of INITIALIZING differs from the stream's: it must be the one shown,
	// and the stream's lines of that phase must not be repeated.
	if err := e.objects.WriteEncrypted(context.Background(), executor.PhaseLogKey(id, run.PhaseInitializing), []byte("init 1 (full)\ninit 2\n"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := readAll(t, e.open(ctx, id, false))
	equalLines(t, got, "INITIALIZING:init 1 (full)", "INITIALIZING:init 2", "PLANNING:plan 1", "PLANNING:")
}

// A launcher sends a phase's lines in messages of several lines each; they are shown one by one,
// empty lines included, in order with those sent alone.
func TestStreamRunLogsOfMessagesOfSeveralLines(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	e.startPhase(id, run.PhasePlanning)
	e.publish(id, run.PhasePlanning, "plan 1\n\nplan 3", "plan 4", "plan 5\nplan 6")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := readAll(t, e.open(ctx, id, false))
	equalLines(t, got, "PLANNING:plan 1", "PLANNING:", "PLANNING:plan 3", "PLANNING:plan 4", "PLANNING:plan 5", "PLANNING:plan 6")
}

func TestStreamRunLogsFollowEndsWithTheRun(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	e.phase(id, run.PhaseInitializing, "init")
	e.startPhase(id, run.PhasePlanning)
	e.publish(id, run.PhasePlanning, "plan 1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := e.open(ctx, id, true)

	var got []string
	receive := func(n int) {
		t.Helper()
		for len(got) < n {
			if !s.Receive() {
				t.Fatalf("stream ended after %v: %v", got, s.Err())
			}
			for _, l := range s.Msg().GetLines() {
				got = append(got, l.GetPhase()+":"+l.GetText())
			}
		}
	}
	receive(2)
	// PLANNING finishes while followed: its lines came from the stream and are not repeated
	// from the bucket; the run waits for a confirmation (not terminal), then applies.
	e.publish(id, run.PhasePlanning, "plan 2")
	e.finishPhase(id, run.PhasePlanning, "plan 1", "plan 2")
	e.append(id, run.RunUnconfirmed{At: time.Now(), Actor: "wkr_1"})
	receive(3)
	e.append(id, run.RunConfirmed{At: time.Now(), Actor: "user:test"},
		run.RunAssigned{WorkerID: "wkr_2", PoolID: "wp_1", At: time.Now(), Actor: "system:test"})
	e.phase(id, run.PhaseApplying, "apply 1", "apply 2")
	e.append(id, run.RunFinished{StackID: "stk_logs", At: time.Now(), Actor: "wkr_2"})
	got = append(got, readAll(t, s)...)
	equalLines(t, got, "INITIALIZING:init", "PLANNING:plan 1", "PLANNING:plan 2", "APPLYING:apply 1", "APPLYING:apply 2")

	// Read again after the end: finished phases from the bucket only, same lines.
	again := readAll(t, e.open(ctx, id, true))
	equalLines(t, again, got...)
}

// A follower that asks to stop at UNCONFIRMED gets every line of the plan,
// then the end of the stream.
func TestStreamRunLogsFollowStopsAtUnconfirmedWhenAsked(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	e.phase(id, run.PhaseInitializing, "init")
	e.startPhase(id, run.PhasePlanning)
	e.publish(id, run.PhasePlanning, "plan 1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := e.client.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{Run: id, Follow: true, StopAtUnconfirmed: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ended := make(chan []string, 1)
	go func() {
		var got []string
		for s.Receive() {
			for _, l := range s.Msg().GetLines() {
				got = append(got, l.GetPhase()+":"+l.GetText())
			}
		}
		if err := s.Err(); err != nil {
			got = append(got, "error: "+err.Error())
		}
		ended <- got
	}()
	e.publish(id, run.PhasePlanning, "plan 2")
	e.finishPhase(id, run.PhasePlanning, "plan 1", "plan 2")
	e.append(id, run.RunUnconfirmed{At: time.Now(), Actor: "wkr_1"})
	select {
	case got := <-ended:
		equalLines(t, got, "INITIALIZING:init", "PLANNING:plan 1", "PLANNING:plan 2")
	case <-ctx.Done():
		t.Fatal("the stream did not end at UNCONFIRMED")
	}
}

func TestStreamRunLogsManyLinesAcrossTheBoundary(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	var want, lines []string
	for i := range 1200 {
		lines = append(lines, fmt.Sprintf("line %d", i))
		want = append(want, fmt.Sprintf("PLANNING:line %d", i))
	}
	e.phase(id, run.PhasePlanning, lines...)
	e.startPhase(id, run.PhaseApplying)
	var applying []string
	for i := range 1100 {
		applying = append(applying, fmt.Sprintf("apply %d", i))
		want = append(want, fmt.Sprintf("APPLYING:apply %d", i))
	}
	e.publish(id, run.PhaseApplying, applying...)
	e.append(id, run.RunFailed{StackID: "stk_logs", Note: "worker lost", At: time.Now(), Actor: "system:test"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	equalLines(t, readAll(t, e.open(ctx, id, true)), want...)
	equalLines(t, readAll(t, e.open(ctx, id, false)), want...)
}

func TestStreamRunLogsErrors(t *testing.T) {
	e := newLogsEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		run  string
		code connect.Code
		msg  string
	}{
		{"run_nosuchrun", connect.CodeNotFound, "run_nosuchrun"},
		{"stk_x", connect.CodeInvalidArgument, "run:"},
		{"", connect.CodeInvalidArgument, "run: must not be empty"},
	} {
		s := e.open(ctx, tc.run, false)
		for s.Receive() {
			t.Fatalf("%q: got lines", tc.run)
		}
		if connect.CodeOf(s.Err()) != tc.code || !strings.Contains(s.Err().Error(), tc.msg) {
			t.Errorf("%q: %v, want %s containing %q", tc.run, s.Err(), tc.code, tc.msg)
		}
	}
}

// A launcher can publish only on its own pool's subjects; lines of a pool
// the run was never assigned to are not shown.
func TestStreamRunLogsIgnoresOtherPools(t *testing.T) {
	e := newLogsEnv(t)
	id := e.newRun()
	e.startPhase(id, run.PhasePreparing)
	e.publish(id, run.PhasePreparing, "from the run's pool")
	msg := nats.NewMsg(protocol.RunLogsSubject("wp_other", id))
	msg.Header.Set(protocol.HeaderPhase, string(run.PhasePreparing))
	msg.Data = []byte("forged by another pool")
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	e.publish(id, run.PhasePreparing, "again from the run's pool")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	equalLines(t, readAll(t, e.open(ctx, id, false)), "PREPARING:from the run's pool", "PREPARING:again from the run's pool")
}
