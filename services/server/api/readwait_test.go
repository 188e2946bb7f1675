package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/testenv"
)

// runClient serves svc over HTTP and returns a client of it.
func runClient(t *testing.T, svc *RunService) gantryv1connect.RunServiceClient {
	t.Helper()
	route := svc.Route()
	mux := http.NewServeMux()
	mux.Handle(route.Path, route.Handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return gantryv1connect.NewRunServiceClient(srv.Client(), srv.URL)
}

// GetRun with min_cursor answers once the runs read model includes that
// event, with the run as the event left it.
func TestGetRunWaitsForTheEventItIsGiven(t *testing.T) {
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, store := testenv.EventStore(t, reg)
	const id = "run_readwait"
	at := time.Now().UTC()
	stream := eventstore.Stream{Type: eventstore.StreamRun, ID: id}
	if _, err := store.Append(ctx, stream, eventstore.NoStream,
		run.RunQueued{RunID: id, StackID: "stk_rw", Type: run.Proposed, Commit: "0123456789abcdef0123456789abcdef01234567", At: at, Actor: "user:test"}); err != nil {
		t.Fatal(err)
	}
	if err := projections.Rebuild(ctx, pool, store, nil, projections.RunsName); err != nil {
		t.Fatal(err)
	}
	appended, err := store.Append(ctx, stream, 1, run.RunReady{At: at, Actor: "system:test"})
	if err != nil {
		t.Fatal(err)
	}
	c := runClient(t, NewRunService(nil, projections.NewQueries(pool), nil, nil).WithReadWaiter(projections.NewWaiter(pool, nil)))

	got := make(chan *gantryv1.Run, 1)
	failed := make(chan error, 1)
	go func() {
		resp, err := c.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: id,
			MinCursor: &gantryv1.EventCursor{Tx: appended[0].Tx, Position: appended[0].Position}}))
		if err != nil {
			failed <- err
			return
		}
		got <- resp.Msg.GetRun()
	}()
	// Without the wait the read model would say QUEUED: it has not seen RunReady.
	resp, err := c.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: id}))
	if err != nil || resp.Msg.GetRun().GetState() != gantryv1.RunState_RUN_STATE_QUEUED {
		t.Fatalf("GetRun without min_cursor: %v, %v", resp, err)
	}
	select {
	case r := <-got:
		t.Fatalf("GetRun answered %s before the read model included the event", r.GetState())
	case err := <-failed:
		t.Fatal(err)
	case <-time.After(3 * projections.WaitPollInterval):
	}
	if err := projections.Rebuild(ctx, pool, store, nil, projections.RunsName); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.GetState() != gantryv1.RunState_RUN_STATE_READY {
			t.Fatalf("GetRun with min_cursor: %s, want READY", r.GetState())
		}
	case err := <-failed:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("GetRun with min_cursor did not answer once the read model had the event")
	}
}

func TestGetRunRefusesABadCursor(t *testing.T) {
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := testenv.EventStore(t, reg)
	ctx := context.Background()
	c := runClient(t, NewRunService(nil, projections.NewQueries(pool), nil, nil).WithReadWaiter(projections.NewWaiter(pool, nil)))
	_, err = c.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: "run_x", MinCursor: &gantryv1.EventCursor{Tx: 5}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "min_cursor: tx and position") {
		t.Errorf("a cursor without position: %v, want InvalidArgument naming min_cursor", err)
	}
	without := runClient(t, NewRunService(nil, projections.NewQueries(pool), nil, nil))
	_, err = without.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: "run_x", MinCursor: &gantryv1.EventCursor{Tx: 5, Position: 9}}))
	if connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("min_cursor on a service without a read waiter: %v, want Unimplemented", err)
	}
}
