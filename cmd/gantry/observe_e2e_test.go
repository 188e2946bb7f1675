package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// probe GETs path on the server's instrumentation listener and returns the
// status code and body.
func (s *testServer) probe(t testing.TB, path string) (int, string) {
	t.Helper()
	if s.probesURL == "" {
		t.Fatal("the server serves no probes")
	}
	res, err := http.Get(s.probesURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return res.StatusCode, string(body)
}

// scrape reads /metrics, keyed by each series as the text format prints it:
// name{label="value",...} with labels in name order.
func (s *testServer) scrape(t testing.TB) map[string]float64 {
	t.Helper()
	code, body := s.probe(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

// After a run, /metrics shows it: the API call, the pick-up, the
// assignment, the worker's reports, the idle worker, a run waiting in
// another pool's queue, and the relay and projections caught up.
func TestMetricsAfterARun(t *testing.T) {
	srv := startServer(t, func(c *serverConfig) {
		c.publicWorkers, c.dataDir, c.path = 1, t.TempDir(), os.Getenv("PATH")
	})
	for path, want := range map[string]string{"/startup": "started\n", "/liveness": "ok\n", "/readiness": "postgres: ok\nnats: ok\nbucket: ok\n"} {
		if code, body := srv.probe(t, path); code != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "measured", RepositoryUrl: demoRepo(t)})
	c.waitRunState(t, c.trigger(t, "measured", gantryv1.RunType_RUN_TYPE_PROPOSED), gantryv1.RunState_RUN_STATE_FINISHED)
	// A pool without workers: its run waits in the queue.
	idlePool, _, _ := createPoolCLI(t, srv, "empty")
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "waiting", RepositoryUrl: demoRepo(t), WorkerPoolId: idlePool})
	c.trigger(t, "waiting", gantryv1.RunType_RUN_TYPE_PROPOSED)

	public := `pool="wp_public"`
	want := map[string]func(float64) bool{
		`gantry_api_request_duration_seconds_count{code="ok",procedure="/gantry.v1.RunService/TriggerRun"}`: eq(2),
		`gantry_run_pickup_seconds_count{` + public + `}`:                                                   eq(1),
		`gantry_scheduler_assignments_total{` + public + `}`:                                                eq(1),
		`gantry_gateway_reports_total{code="ok",kind="run.job"}`:                                            eq(1),
		`gantry_workers{` + public + `,status="IDLE"}`:                                                      eq(1),
		`gantry_runs{pool="` + idlePool + `",state="READY"}`:                                                eq(1),
		`gantry_pool_queue_depth{pool="` + idlePool + `"}`:                                                  eq(1),
		`gantry_pool_queue_oldest_seconds{pool="` + idlePool + `"}`:                                         func(v float64) bool { return v >= 0 && v < 60 },
		`gantry_relay_lag_events`:                                                                           eq(0),
		`gantry_relay_lag_seconds`:                                                                          eq(0),
		`gantry_projector_lag_events{projection="runs"}`:                                                    eq(0),
		`gantry_projector_lag_seconds{projection="workers"}`:                                                eq(0),
		`gantry_scheduler_passes_total`:                                                                     func(v float64) bool { return v > 0 },
	}
	var last map[string]float64
	defer func() {
		if t.Failed() {
			for series, ok := range want {
				if v, found := last[series]; !found || !ok(v) {
					t.Logf("%s = %v (found %v)", series, v, found)
				}
			}
		}
	}()
	await.Until(t, 30*time.Second, "the series of the run in /metrics", func() bool {
		last = srv.scrape(t)
		for series, ok := range want {
			if v, found := last[series]; !found || !ok(v) {
				return false
			}
		}
		return true
	})
	if _, found := last[`gantry_runs{`+public+`,state="FINISHED"}`]; found {
		t.Error("gantry_runs counts ended runs")
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// /readiness and grpc.health fail while NATS is down and recover when it
// is back; reflection lists the API's services.
func TestReadinessFollowsNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS and the server")
	}
	n := testenv.NATS(t)
	srv := startServerOn(t, n.Bus())
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	health := healthpb.NewHealthClient(conn)
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		res, err := health.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("grpc.health Check(%q): %v", service, err)
		}
		return res.GetStatus()
	}
	if s := status(""); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %s, want SERVING", s)
	}
	if s := status("gantry.v1.RunService"); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of RunService: %s, want SERVING", s)
	}
	if _, err := health.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "no.Such"}); err == nil {
		t.Fatal("health of an unknown service: want NotFound")
	}
	if got := reflectedServices(t, conn); !slices.Contains(got, "gantry.v1.RunService") || !slices.Contains(got, "grpc.health.v1.Health") {
		t.Fatalf("reflection lists %v, want the API's services and grpc.health.v1.Health", got)
	}

	n.Stop(t)
	var body string
	await.Until(t, 30*time.Second, "/readiness to fail without NATS", func() bool {
		var code int
		code, body = srv.probe(t, "/readiness")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "nats: ") || !strings.Contains(body, "postgres: ok") {
		t.Fatalf("/readiness without NATS said %q: want NATS named as failing, PostgreSQL ok", body)
	}
	if s := status(""); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health without NATS: %s, want NOT_SERVING", s)
	}
	if code, _ := srv.probe(t, "/liveness"); code != http.StatusOK {
		t.Fatalf("/liveness without NATS: %d, want 200: a restart does not bring NATS back", code)
	}

	n.Start(t)
	await.Until(t, 30*time.Second, "/readiness to recover with NATS", func() bool {
		code, _ := srv.probe(t, "/readiness")
		return code == http.StatusOK
	})
	if s := status(""); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after NATS came back: %s, want SERVING", s)
	}
}

// reflectedServices lists the services gRPC server reflection names.
func reflectedServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// collector is an OTLP/HTTP trace receiver: it keeps every span exported
// to it, or decodes and drops them (discard: benchmarks).
type collector struct {
	discard bool
	mu      sync.Mutex
	spans   []span
}

type span struct {
	name, traceID, spanID, parentID, service string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if r.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		if c.discard {
			break
		}
		var service string
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, span{name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parentID: hex.EncodeToString(s.GetParentSpanId()), service: service})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (c *collector) all() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

// A run's trace follows it: the TriggerRun call, the append, the relay's
// publish, the scheduler's assignment, the worker's run and its reports
// share one trace id, exported over OTLP, and the run's events carry it.
func TestTraceFollowsARunToTheWorkerAndBack(t *testing.T) {
	col := &collector{}
	otlp := httptest.NewServer(col)
	t.Cleanup(otlp.Close)
	traces, err := startTracing(context.Background(), func(name string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL}[name]
	}, "gantry-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = traces.Shutdown(context.Background()) })
	srv := startServer(t, func(c *serverConfig) {
		c.publicWorkers, c.dataDir, c.path = 1, t.TempDir(), os.Getenv("PATH")
		c.tracing = traces.Provider()
	})
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "traced", RepositoryUrl: demoRepo(t)})
	res, err := c.runs.TriggerRun(testCtx(t), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "traced", Type: gantryv1.RunType_RUN_TYPE_PROPOSED}))
	if err != nil {
		t.Fatal(err)
	}
	runID := res.Msg.GetRun().GetId()
	c.waitRunState(t, runID, gantryv1.RunState_RUN_STATE_FINISHED)

	// Every event of the run carries the trace of the call that queued it.
	events, err := srv.store.Load(testCtx(t), runID)
	if err != nil {
		t.Fatal(err)
	}
	traceID := events[0].Metadata.TraceID
	if len(traceID) != 32 {
		t.Fatalf("RunQueued carries trace id %q", traceID)
	}
	for _, e := range events {
		if e.Metadata.TraceID != traceID {
			t.Errorf("%s (by %s) has trace %q, want the run's %s", e.Type, e.Metadata.Actor, e.Metadata.TraceID, traceID)
		}
	}

	wantSpans := []string{"gantry.v1.RunService/TriggerRun", "eventstore.append", "relay.publish", "scheduler.assign",
		"launcher.run", "gateway.report run.job", "gateway.report phase.finished"}
	var inTrace []span
	defer func() {
		if t.Failed() {
			var names []string
			for _, s := range inTrace {
				names = append(names, s.name)
			}
			t.Logf("trace %s has spans %v, want at least %v", traceID, names, wantSpans)
		}
	}()
	await.Until(t, 30*time.Second, "the run's spans at the collector", func() bool {
		if err := traces.Flush(testCtx(t)); err != nil {
			t.Logf("flush: %v", err)
		}
		inTrace = slices.DeleteFunc(col.all(), func(s span) bool { return s.traceID != traceID })
		for _, name := range wantSpans {
			if !slices.ContainsFunc(inTrace, func(s span) bool { return s.name == name }) {
				return false
			}
		}
		return true
	})
	// One root: the API call; every other span's parent is in the trace.
	ids := map[string]bool{}
	for _, s := range inTrace {
		ids[s.spanID] = true
	}
	for _, s := range inTrace {
		switch {
		case s.name == "gantry.v1.RunService/TriggerRun" && s.parentID != "":
			t.Errorf("the API call's span has a parent %s", s.parentID)
		case s.name != "gantry.v1.RunService/TriggerRun" && !ids[s.parentID]:
			t.Errorf("span %s has parent %q, not in the trace", s.name, s.parentID)
		}
		if s.service != "gantry-test" {
			t.Errorf("span %s from service %q", s.name, s.service)
		}
	}
}
