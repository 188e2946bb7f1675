package scheduler_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/scheduler"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// TestSchedulesFireEachTickOnceAcrossReplicas runs two schedule loops on
// one clock: each due tick fires once between them, and after an
// "outage" of hours only the latest missed tick fires.
func TestSchedulesFireEachTickOnceAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	stackID := e.createStack("wp_public")
	since := time.Now().UTC().Truncate(time.Microsecond)
	id := schedule.DriftID(stackID)
	events := must[schedule.Event](t)(schedule.Decide(schedule.State{}, schedule.Set{ScheduleID: id, StackID: stackID, Kind: schedule.Drift,
		Cron: "*/15 * * * *", Actor: actor, At: since}))
	e.append(eventstore.Batch{Stream: eventstore.Stream{Type: eventstore.StreamSchedule, ID: id}, Events: events})
	await.Until(t, 10*time.Second, "the schedule's read model", func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), "SELECT count(*) FROM rm_schedules WHERE id = $1", id).Scan(&n)
		return n == 1
	})

	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	first := since.Add(15 * time.Minute).Truncate(15 * time.Minute)
	set(first.Add(time.Second))
	var loops []*scheduler.Schedules
	for range 2 {
		cmds, err := commands.NewSystem(commands.SystemConfig{Aggregates: testenv.Aggregates(t, e.store)})
		if err != nil {
			t.Fatal(err)
		}
		s, err := scheduler.NewSchedules(scheduler.SchedulesConfig{Pool: e.pool, Commands: cmds, Interval: 20 * time.Millisecond,
			Now: func() time.Time { return *now.Load() }})
		if err != nil {
			t.Fatal(err)
		}
		background(t, s)
		loops = append(loops, s)
	}
	fired := func() int64 { return loops[0].Fired() + loops[1].Fired() }
	await.Until(t, 10*time.Second, "the first tick", func() bool { return fired() == 1 })
	// The read model catches up; both loops keep looking: still one.
	time.Sleep(300 * time.Millisecond)
	if n := fired(); n != 1 {
		t.Fatalf("the first tick fired %d times", n)
	}
	// Hours later (every scheduler was down): the latest tick, once.
	set(first.Add(5*time.Hour + time.Minute))
	await.Until(t, 10*time.Second, "the latest missed tick", func() bool { return fired() == 2 })
	time.Sleep(300 * time.Millisecond)
	var ticks []time.Time
	for _, ev := range decodeStream(t, e.store, id) {
		if f, ok := ev.data.(schedule.ScheduleFired); ok {
			ticks = append(ticks, f.Tick)
		}
	}
	if len(ticks) != 2 || !ticks[0].Equal(first) || !ticks[1].Equal(first.Add(5*time.Hour)) {
		t.Errorf("fired ticks %v, want %v and %v", ticks, first, first.Add(5*time.Hour))
	}
}
