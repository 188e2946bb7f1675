package instrumentation_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/metrics"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/platform/pgserver"
	"github.com/gantryhq/gantry/services/server/instrumentation"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// The probes of a server whose PostgreSQL stops and comes back: /readiness
// fails, naming it, while /liveness holds; /startup answers once started.
func TestProbesFollowPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := pgserver.Config{DataDir: testenv.ClusterDir(t)}
	pg, err := pgserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	if err := pg.CreateDatabase(ctx, "probes"); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pg.URL("probes"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	nc := testenv.NATS(t).Connect(t, "probes")
	blobURL, err := objstore.FileURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := objstore.Open(ctx, blobURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bucket.Close() })

	reg := metrics.NewRegistry()
	if err := reg.Register(instrumentation.NewGauges(pool, []string{"runs"}, nil)); err != nil {
		t.Fatal(err)
	}
	readiness := instrumentation.NewReadiness(time.Second,
		instrumentation.Postgres(pool), instrumentation.NATS(nc), instrumentation.Bucket(bucket))
	srv, err := instrumentation.New(instrumentation.Config{Listen: "127.0.0.1:0", Metrics: reg, Readiness: readiness})
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + srv.Addr().String()

	if code, body := get(t, base+"/startup"); code != http.StatusServiceUnavailable {
		t.Fatalf("/startup before the start: %d %q, want 503", code, body)
	}
	srv.Started()
	if code, _ := get(t, base+"/startup"); code != http.StatusOK {
		t.Fatalf("/startup once started: %d, want 200", code)
	}
	if code, body := get(t, base+"/readiness"); code != http.StatusOK || body != "postgres: ok\nnats: ok\nbucket: ok\n" {
		t.Fatalf("/readiness: %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, "gantry_relay_lag_events 0") || !strings.Contains(body, `gantry_projector_lag_events{projection="runs"} 0`) {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}

	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/readiness")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "postgres: ") || strings.Contains(body, "postgres: ok") ||
		!strings.Contains(body, "nats: ok") {
		t.Fatalf("/readiness without PostgreSQL: %d %q, want 503 naming postgres", code, body)
	}
	if err := readiness.Ready(ctx); err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("Ready without PostgreSQL: %v", err)
	}
	if code, _ := get(t, base+"/liveness"); code != http.StatusOK {
		t.Fatalf("/liveness without PostgreSQL: %d, want 200", code)
	}
	// A scrape still answers: the read models' figures are left out.
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") ||
		strings.Contains(body, "gantry_relay_lag_events") {
		t.Fatalf("/metrics without PostgreSQL: %d\n%s", code, body)
	}

	cfg.Port = pg.Port()
	pg, err = pgserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	await.Until(t, 30*time.Second, "/readiness to recover with PostgreSQL", func() bool {
		code, _ := get(t, base+"/readiness")
		return code == http.StatusOK
	})
	if err := readiness.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}
