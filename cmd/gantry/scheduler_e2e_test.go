package main

import (
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// The server runs a scheduler: a READY run goes to an idle worker of its
// stack's pool without anything else running.
func TestServerAssignsReadyRunsToIdleWorkers(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "sched", "--repo", repo)
	admin := srv.as(srv.adminToken(t))

	const workerID = "wkr_e2e"
	evs, err := worker.Decide(worker.State{}, worker.Register{WorkerID: workerID, PoolID: ids.PublicPool, Actor: "test", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	events := make([]any, len(evs))
	for i, e := range evs {
		events[i] = e
	}
	if _, err := srv.store.Append(testCtx(t), eventstore.Stream{Type: eventstore.StreamWorker, ID: workerID}, eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}

	r := trigger(t, admin, "sched", gantryv1.RunType_RUN_TYPE_PROPOSED)
	deadline := time.Now().Add(15 * time.Second)
	for getRun(t, admin, r.GetId()).GetWorkerId() != workerID {
		if time.Now().After(deadline) {
			t.Fatalf("run %s was not assigned to the idle worker %s: %v", r.GetId(), workerID, getRun(t, admin, r.GetId()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
