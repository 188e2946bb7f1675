package commands_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestDueTickFiresTheLatestMissedTickOnce(t *testing.T) {
	sched, err := commands.ParseCron("*/15 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	for _, tc := range []struct {
		name             string
		since, last, now time.Time
		want             time.Time
		ok               bool
	}{
		{"nothing due yet", at(1), time.Time{}, at(14), time.Time{}, false},
		{"the first tick", at(1), time.Time{}, at(15), at(15), true},
		{"an outage of hours fires the latest tick only", at(1), at(15), at(200), at(195), true},
		{"fired already", at(1), at(195), at(209), time.Time{}, false},
		{"a new cron counts from when it was set", at(190), at(15), at(194), time.Time{}, false},
	} {
		got, ok := commands.DueTick(sched, tc.since, tc.last, tc.now)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if _, err := commands.ParseCron("now and then"); err == nil {
		t.Error("a bad cron parses")
	}
}

// TestScheduleFiresOncePerTickAcrossReplicas fires one tick from several
// schedulers at once (each its own System and repository, as processes
// would): one fires it, and its run is queued once however often the
// drain is told.
func TestScheduleFiresOncePerTickAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, nil)
	ctx := ctxFor(t)
	dir, head, _ := repo(t)
	stackID, err := s.CreateStack(ctx, alice, stack.Settings{Name: "drifty", RepositoryURL: "file://" + dir}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.SetDriftDetection(ctx, alice, "drifty", "*/15 * * * *", true)
	if err != nil || id != schedule.DriftID(stackID) {
		t.Fatalf("set drift detection: %s, %v", id, err)
	}
	if _, err := s.SetDriftDetection(ctx, alice, "drifty", "61 * * * *", false); err == nil {
		t.Error("a bad cron was accepted")
	}
	tick := time.Now().UTC().Add(time.Minute).Truncate(time.Minute)
	var wg sync.WaitGroup
	fired := make([]bool, 4)
	runs := make([]string, 4)
	for i := range fired {
		sys, err := commands.NewSystem(commands.SystemConfig{Aggregates: testenv.Aggregates(t, e.store)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			var err error
			if fired[i], runs[i], err = sys.FireSchedule(ctx, commands.Caller{Actor: "system:scheduler"}, id, tick); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var runID string
	n := 0
	for i, f := range fired {
		if f {
			n, runID = n+1, runs[i]
		}
	}
	if n != 1 || e.count(t, "ScheduleFired") != 1 {
		t.Fatalf("fired %d times (%d events), want once", n, e.count(t, "ScheduleFired"))
	}
	if f, _, err := s.FireSchedule(ctx, commands.Caller{Actor: "system:scheduler"}, id, tick.Add(-time.Minute)); f || err != nil {
		t.Errorf("an older tick fired: %v %v", f, err)
	}
	queued := commands.ScheduledRun{ScheduleID: id, Tick: tick, RunID: runID, StackID: stackID, Kind: schedule.Drift}
	for range 2 {
		if err := s.QueueScheduledRun(ctx, queued); err != nil {
			t.Fatal(err)
		}
	}
	r, err := aggregate.Load(ctx, e.cfg.Aggregates, aggregate.Run, runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type() != run.Proposed || !r.DriftDetection() || r.Commit() != head || r.Status() != run.Ready || e.count(t, "RunQueued") != 1 {
		t.Errorf("the drift run: %s %v %s %s, %d runs", r.Type(), r.DriftDetection(), r.Commit(), r.Status(), e.count(t, "RunQueued"))
	}
}

// TestDriftRunLimitCapsConcurrentDriftRuns: with a drift run limit of 1,
// the second drift run waits until the first ends.
func TestDriftRunLimitCapsConcurrentDriftRuns(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, nil)
	ctx := ctxFor(t)
	const pool = "wp_limited"
	created, err := workerpool.Decide(workerpool.State{}, workerpool.Create{PoolID: pool, Name: "limited", DriftRunLimit: 1,
		Certificate: testenv.PoolCertificate(t, pool), SecretHash: "h", Actor: "user:alice", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: pool}, eventstore.NoStream, created[0]); err != nil {
		t.Fatal(err)
	}
	dir, _, _ := repo(t)
	stackID, err := s.CreateStack(ctx, alice, stack.Settings{Name: "limited", RepositoryURL: "file://" + dir, WorkerPoolID: pool}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	drift := func(runID string) {
		t.Helper()
		if err := s.QueueScheduledRun(ctx, commands.ScheduledRun{ScheduleID: schedule.DriftID(stackID), RunID: runID, StackID: stackID, Kind: schedule.Drift}); err != nil {
			t.Fatal(err)
		}
	}
	first, second := "run_first", "run_second"
	drift(first)
	drift(second)
	w1, err := s.RegisterWorker(ctx, pool, commands.WorkerRegistration{})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.RegisterWorker(ctx, pool, commands.WorkerRegistration{})
	if err != nil {
		t.Fatal(err)
	}
	sched := commands.Caller{Actor: "system:scheduler"}
	if _, err := s.AssignRun(ctx, sched, first, pool, w1); err != nil {
		t.Fatal(err)
	}
	var refused *commands.RefusedError
	if _, err := s.AssignRun(ctx, sched, second, pool, w2); !errors.Is(err, workerpool.ErrDriftLimit) || !errors.As(err, &refused) {
		t.Fatalf("a second drift run: %v, want a refusal for the limit", err)
	}
	// The first ends: its slot is free for the second.
	if err := s.StartPhase(ctx, pool, w1, first, run.PhasePreparing); err != nil {
		t.Fatal(err)
	}
	if err := s.EndRun(ctx, pool, w1, first, run.Failed, "the clone failed", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignRun(ctx, sched, second, pool, w2); err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	p, err := aggregate.Load(ctx, e.cfg.Aggregates, aggregate.WorkerPool, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.DriftRuns(); len(got) != 1 || got[0] != second {
		t.Errorf("drift runs holding a slot: %v", got)
	}
}
