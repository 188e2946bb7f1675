package workerapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	gblob "gocloud.dev/blob"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/server/workerapi"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

const (
	actor  = "user:test"
	commit = "0123456789abcdef0123456789abcdef01234567"
)

// env is a migrated database with its event store, a mem:// bucket, and the worker API served
// over HTTP with the real pool verifier.
type env struct {
	t       *testing.T
	store   *eventstore.Store
	bucket  *gblob.Bucket   // objects' bucket, as stored
	objects *objstore.Store // logs encrypted at rest
	srv     *httptest.Server
	// handled receives once per request whose handler has returned.
	handled chan struct{}
	seq     atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, "mem://")
}

// newEnvAt is newEnv with the bucket at blobURL.
func newEnvAt(t *testing.T, blobURL string) *env {
	t.Helper()
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	_, store := testenv.EventStore(t, reg)
	objects := testenv.ObjectStore(t, blobURL, testenv.Keeper(t))
	aggs := testenv.Aggregates(t, store)
	h, err := workerapi.NewHandler(workerapi.Config{Objects: objects, Aggregates: aggs, Pools: poolauth.New(aggs)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, bucket: objects.Bucket(), objects: objects, handled: make(chan struct{}, 256)}
	mux := http.NewServeMux()
	// handled lets a test wait until the handler of an aborted request has returned.
	mux.Handle(protocol.WorkerAPIPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case e.handled <- struct{}{}:
			default:
			}
		}()
		h.ServeHTTP(w, r)
	}))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// waitHandled waits until the handler of one more request has returned.
func (e *env) waitHandled() {
	e.t.Helper()
	select {
	case <-e.handled:
	case <-time.After(10 * time.Second):
		e.t.Fatal("the server's handler did not return")
	}
}

func (e *env) id(prefix string) string {
	return fmt.Sprintf("%s_%d_%06d", prefix, time.Now().UnixNano(), e.seq.Add(1))
}

func (e *env) client(pool, secret string) *workerclient.Client {
	return workerclient.New(e.srv.URL, pool, secret, e.srv.Client())
}

func (e *env) append(stream eventstore.Stream, expected int64, events ...any) {
	e.t.Helper()
	if _, err := e.store.Append(context.Background(), stream, expected, events...); err != nil {
		e.t.Fatal(err)
	}
}

// createPool creates a worker pool and returns its id and secret.
func (e *env) createPool() (string, string) {
	e.t.Helper()
	pool := e.id("wp")
	secret := testenv.CreatePool(e.t, e.store, pool, actor)
	return pool, secret
}

// planningRun appends the events of a run assigned to a worker of pool, in PLANNING, and
// returns its id and stream version.
func (e *env) planningRun(pool string) (string, int64) {
	e.t.Helper()
	id := e.id("run")
	at := time.Now().UTC()
	events := []any{
		run.RunQueued{RunID: id, StackID: e.id("stk"), Type: run.Tracked, Commit: commit, At: at, Actor: actor},
		run.RunReady{At: at, Actor: "system:test"},
		run.RunAssigned{WorkerID: e.id("wkr"), PoolID: pool, At: at, Actor: "system:test"},
		run.RunPhaseStarted{Phase: run.PhasePlanning, At: at, Actor: "wkr_test"},
	}
	e.append(eventstore.Stream{Type: eventstore.StreamRun, ID: id}, 0, events...)
	return id, int64(len(events))
}
