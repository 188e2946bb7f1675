package workerapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/server/workerapi"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// The saved workspace of a run goes once the run ends; other runs' stay.
func TestWorkspacesAreDeletedWhenTheirRunEnds(t *testing.T) {
	e := newEnv(t)
	srv := testenv.NATS(t)
	nc := srv.Connect(t, "cleanup-test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- workerapi.CleanUpWorkspaces(ctx, nc, e.bucket, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CleanUpWorkspaces: %v", err)
		}
	})
	for _, id := range []string{"run_ended", "run_waiting"} {
		if err := e.bucket.WriteAll(ctx, executor.WorkspaceKey(id), []byte("sealed"), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The end of one run, relayed (again, until the clean-up has subscribed
	// and acted: a repeat is harmless).
	data, _ := json.Marshal(eventstore.Event{StreamType: eventstore.StreamRun, StreamID: "run_ended", Type: run.RunDiscarded{}.EventType(), Payload: []byte(`{}`)})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := nc.Publish(eventstore.SubjectPrefix+".run.run_ended.RunDiscarded", data); err != nil {
			t.Fatal(err)
		}
		_, err := e.bucket.Attributes(ctx, executor.WorkspaceKey("run_ended"))
		if gcerrors.Code(err) == gcerrors.NotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ended run's workspace is still there (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.bucket.Attributes(ctx, executor.WorkspaceKey("run_waiting")); err != nil {
		t.Fatalf("another run's workspace went too: %v", errors.Unwrap(err))
	}
}
