package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// BenchmarkTriggerRun measures the TriggerRun API call end to end, as a
// client sees it: authentication, the command (load the stack, decide,
// append the run and the stack's lock queue in one transaction) and
// read-your-writes (the call returns once the read models show the run),
// then the read of the run from the read model. Each client triggers
// tracked runs on its own stack; with a commit given the call spawns no
// git, with head=git each call resolves the branch head with git
// ls-remote. Reports p50_ms, p99_ms and calls/s.
//
// Each case runs on three servers, one after the other in the same run:
// without instrumentation (no metrics, no tracing: the baseline), with
// metrics and tracing off (the default), and with tracing on, exporting
// every span over OTLP/HTTP to a collector in the test process.
//
//	go test -run '^$' -bench TriggerRun -benchtime 400x ./cmd/gantry
func BenchmarkTriggerRun(b *testing.B) {
	modes := []struct {
		name string
		opt  func(b *testing.B, c *serverConfig)
	}{
		{"instrumentation=none", func(_ *testing.B, c *serverConfig) { c.instrumentationListen = "" }},
		{"tracing=off", func(*testing.B, *serverConfig) {}},
		{"tracing=on", func(b *testing.B, c *serverConfig) {
			otlp := httptest.NewServer(&collector{discard: true})
			b.Cleanup(otlp.Close)
			traces, err := startTracing(context.Background(), func(name string) string {
				return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL}[name]
			}, "gantry-bench")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = traces.Shutdown(context.Background()) })
			c.tracing = traces.Provider()
		}},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			srv := startServer(b, func(c *serverConfig) { mode.opt(b, c) })
			benchmarkTriggerRun(b, srv)
		})
	}
}

func benchmarkTriggerRun(b *testing.B, srv *testServer) {
	repo, head := gitRepo(b)
	admin := srv.as(srv.adminToken(b))
	cases := []struct {
		clients int
		commit  string
		name    string
	}{
		{1, head, "clients=1"},
		{16, head, "clients=16"},
		{1, "", "clients=1/head=git"},
	}
	var round int // the testing package calls each sub-benchmark more than once
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			round++
			stacks := make([]string, bc.clients)
			for c := range stacks {
				stacks[c] = fmt.Sprintf("bench-%d-%d", round, c)
				_, err := admin.stacks.CreateStack(context.Background(), connect.NewRequest(&gantryv1.CreateStackRequest{Name: stacks[c], RepositoryUrl: repo}))
				if err != nil {
					b.Fatal(err)
				}
			}
			latencies := make([][]time.Duration, bc.clients)
			var next atomic.Int64
			var failed atomic.Pointer[error]
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := range bc.clients {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						_, err := admin.runs.TriggerRun(context.Background(), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: stacks[c], Commit: bc.commit}))
						if err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
						latencies[c] = append(latencies[c], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			all := slices.Concat(latencies...)
			slices.Sort(all)
			b.ReportMetric(ms(percentile(all, 0.50)), "p50_ms")
			b.ReportMetric(ms(percentile(all, 0.99)), "p99_ms")
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
			b.ReportMetric(0, "ns/op") // the metrics above say it better
		})
	}
}

// percentile returns the p-th quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
