package workerpool

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
)

func TestDriftRunSlots(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	created := func(limit int) Event {
		return WorkerPoolCreated{PoolID: "wp_1", Name: "p", DriftRunLimit: limit, SecretHash: "h", Generation: 1, At: at, Actor: "user:a"}
	}
	started := func(id string) Event { return WorkerPoolDriftRunStarted{RunID: id, At: at, Actor: "sched"} }
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   error
	}{
		{"start under the limit", []Event{created(2), started("run_1")}, StartDriftRun{RunID: "run_2", Actor: "sched", At: at}, []Event{started("run_2")}, nil},
		{"start at the limit", []Event{created(1), started("run_1")}, StartDriftRun{RunID: "run_2", Actor: "sched", At: at}, nil, ErrDriftLimit},
		{"no limit", []Event{created(0), started("run_1")}, StartDriftRun{RunID: "run_2", Actor: "sched", At: at}, []Event{started("run_2")}, nil},
		{"start twice is nothing", []Event{created(1), started("run_1")}, StartDriftRun{RunID: "run_1", Actor: "sched", At: at}, nil, nil},
		{"start on a missing pool", nil, StartDriftRun{RunID: "run_1", Actor: "sched", At: at}, nil, domain.ErrNotFound},
		{"end", []Event{created(1), started("run_1")}, EndDriftRun{RunID: "run_1", Actor: "w", At: at},
			[]Event{WorkerPoolDriftRunEnded{RunID: "run_1", At: at, Actor: "w"}}, nil},
		{"end a run holding no slot is nothing", []Event{created(1)}, EndDriftRun{RunID: "run_1", Actor: "w", At: at}, nil, nil},
		{"end with a bad id", []Event{created(1)}, EndDriftRun{RunID: "x", Actor: "w", At: at}, nil, domain.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, e := range tc.given {
				s.Apply(e)
			}
			got, err := Decide(s, tc.cmd)
			if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
	var s State
	for _, e := range []Event{created(2), started("run_1"), started("run_2"), WorkerPoolDriftRunEnded{RunID: "run_1", At: at, Actor: "w"}} {
		s.Apply(e)
	}
	if got := s.DriftRuns(); !reflect.DeepEqual(got, []string{"run_2"}) {
		t.Errorf("DriftRuns = %v", got)
	}
}
