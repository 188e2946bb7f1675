package scheduler_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// Two schedulers at once against 200 READY runs and 8 workers that finish
// each run as soon as they get it: every run is assigned exactly once, no
// worker ever holds two runs, and both schedulers do some of the work.
func TestTwoSchedulersNeverDoubleAssign(t *testing.T) {
	if testing.Short() {
		t.Skip("200 runs")
	}
	e := newEnv(t)
	const (
		pool    = "wp_race"
		nRuns   = 200
		nStacks = 20
		nWork   = 8
	)
	stacks := make([]string, nStacks)
	for i := range stacks {
		stacks[i] = e.createStack(pool)
	}
	runs := make([]string, nRuns)
	for i := range runs {
		// Proposed runs do not take the stack lock, so stacks do not serialise them.
		runs[i] = e.readyRun(stacks[i%nStacks], run.Proposed, i%5 == 0, e.at())
	}
	workers := make([]string, nWork)
	for i := range workers {
		workers[i] = e.id("wkr")
	}
	in := e.listen(pool, workers, true)

	a, b := e.startScheduler("scheduler-a"), e.startScheduler("scheduler-b")
	for _, w := range workers {
		e.registerWorkerID(w, pool)
	}
	in.waitFor(nRuns, 120*time.Second)
	await.Until(t, 30*time.Second, "every run to finish", func() bool {
		var n int
		if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE event_type = 'RunFinished'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == nRuns
	})

	// Every run: exactly one RunAssigned, and one assignment message.
	perRun := map[string]int{}
	rows, err := e.pool.Query(t.Context(), `SELECT stream_id, count(*) FROM events WHERE event_type = 'RunAssigned' GROUP BY stream_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		perRun[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	messages := map[string]int{}
	for _, m := range in.assignments() {
		messages[m.RunID]++
	}
	for _, r := range runs {
		if perRun[r] != 1 || messages[r] != 1 {
			t.Errorf("run %s: %d RunAssigned events, %d messages; want 1 and 1", r, perRun[r], messages[r])
		}
	}
	if len(perRun) != nRuns {
		t.Errorf("%d runs assigned, want %d", len(perRun), nRuns)
	}

	// Every worker: assigned and finished alternately, the same run each time.
	total := 0
	for _, w := range workers {
		holding := ""
		for _, ev := range decodeStream(t, e.store, w) {
			var p struct {
				RunID string `json:"run_id"`
			}
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			switch ev.Type {
			case "WorkerRunAssigned":
				if holding != "" {
					t.Errorf("worker %s got run %s while holding %s (version %d)", w, p.RunID, holding, ev.Version)
				}
				holding = p.RunID
				total++
			case "WorkerRunFinished":
				if holding != p.RunID {
					t.Errorf("worker %s finished %s while holding %q", w, p.RunID, holding)
				}
				holding = ""
			}
		}
	}
	if total != nRuns {
		t.Errorf("workers took %d runs, want %d", total, nRuns)
	}
	if a.Assigned() == 0 || b.Assigned() == 0 || a.Assigned()+b.Assigned() != nRuns {
		t.Errorf("scheduler a assigned %d, b %d; want both > 0 and %d in all", a.Assigned(), b.Assigned(), nRuns)
	}
	t.Logf("scheduler a assigned %d runs, b %d", a.Assigned(), b.Assigned())
}

// registerWorkerID registers a worker with a chosen id.
func (e *env) registerWorkerID(id, pool string) {
	e.t.Helper()
	e.workerCommand(id, worker.Register{WorkerID: id, PoolID: pool, Actor: "launcher:test", At: e.at()})
}
