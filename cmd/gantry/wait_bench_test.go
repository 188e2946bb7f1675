package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
)

// pollInterval is how often the polling client of BenchmarkWaitLatency
// reads the run, as the side-by-side client did.
const pollInterval = 50 * time.Millisecond

// BenchmarkWaitLatency measures what a user waits for: a tracked,
// autodeployed run with managed state on a pool of 2 launcher processes,
// from the trigger to seeing it FINISHED, three ways in each iteration (in
// alternating order): `gantry run trigger STACK --wait` as a real process
// (from its start to its exit), an API client that triggers the run and
// reads it every 50 ms until it is FINISHED, and the same configuration
// run directly with terraform (init, plan -out, apply, as
// BenchmarkOrchestrationOverhead does). Each Gantry run gets a new stack,
// so that, like the direct run, it applies two creations from empty
// state. Reports the p50/p99 of each and the p50 of the CLI's lag behind
// the polling client, then where the two differ: the time from the run's
// FINISHED event (its history time) to the CLI's exit and to the polling
// client's read that saw it, and the time from each one's start to the
// run's QUEUED (the CLI's includes starting the process).
//
//	go test -run '^$' -bench WaitLatency -benchtime 30x ./cmd/gantry
func BenchmarkWaitLatency(b *testing.B) {
	srv := startServer(b)
	c := srv.as(srv.adminToken(b))
	pool := startLauncherPool(b, srv, "bench-wait", 2)
	repo := demoRepo(b)
	direct := newDirectRunner(b, repo)
	runIDLine := regexp.MustCompile(`(?m)^id +(run_\w+)$`)

	var cli, polled, raw, lag, cliAfterFinished, polledAfterFinished, cliToQueued, polledToQueued []time.Duration
	i := 0
	newStack := func(kind string) string {
		i++
		return c.createStack(b, &gantryv1.CreateStackRequest{Name: fmt.Sprintf("%s-%d", kind, i),
			RepositoryUrl: repo, WorkerPoolId: pool.id, Autodeploy: true, ManagedState: true})
	}
	viaCLI := func() time.Duration {
		stack := newStack("cli")
		cmd := exec.Command(os.Args[0], "run", "trigger", stack, "--wait")
		cmd.Env = append(os.Environ(), execEnv+"=1", auth.ConfigDirEnv+"="+srv.configDir, "NO_COLOR=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		exited := time.Now()
		if err != nil {
			b.Fatalf("gantry run trigger --wait: %v\n%s", err, stderr.String())
		}
		m := runIDLine.FindStringSubmatch(stdout.String())
		if m == nil {
			b.Fatalf("no run id in:\n%s", stdout.String())
		}
		r := c.getRun(b, m[1])
		cliAfterFinished = append(cliAfterFinished, exited.Sub(historyTime(b, r, gantryv1.RunState_RUN_STATE_FINISHED)))
		cliToQueued = append(cliToQueued, historyTime(b, r, gantryv1.RunState_RUN_STATE_QUEUED).Sub(start))
		return exited.Sub(start)
	}
	viaPolling := func() time.Duration {
		stack := newStack("poll")
		start := time.Now()
		id := c.trigger(b, stack, gantryv1.RunType_RUN_TYPE_TRACKED)
		for {
			r := c.getRun(b, id)
			if r.GetState() == gantryv1.RunState_RUN_STATE_FINISHED {
				seen := time.Now()
				polledAfterFinished = append(polledAfterFinished, seen.Sub(historyTime(b, r, gantryv1.RunState_RUN_STATE_FINISHED)))
				polledToQueued = append(polledToQueued, historyTime(b, r, gantryv1.RunState_RUN_STATE_QUEUED).Sub(start))
				return seen.Sub(start)
			}
			if terminalState(r.GetState()) || time.Since(start) > runEndTimeout {
				b.Fatalf("run %s is %s; history:\n%s", id, r.GetState(), historyText(r))
			}
			time.Sleep(pollInterval)
		}
	}
	for b.Loop() {
		var dc, dp time.Duration
		if len(cli)%2 == 0 {
			dc, dp = viaCLI(), viaPolling()
		} else {
			dp, dc = viaPolling(), viaCLI()
		}
		dd, _ := direct.run(b, false)
		cli, polled, raw = append(cli, dc), append(polled, dp), append(raw, dd)
		lag = append(lag, dc-dp)
	}
	b.StopTimer()
	for _, ds := range [][]time.Duration{cli, polled, raw, lag, cliAfterFinished, polledAfterFinished, cliToQueued, polledToQueued} {
		slices.Sort(ds)
	}
	b.ReportMetric(ms(percentile(cli, 0.50)), "cli_p50_ms")
	b.ReportMetric(ms(percentile(cli, 0.99)), "cli_p99_ms")
	b.ReportMetric(ms(percentile(polled, 0.50)), "polled_p50_ms")
	b.ReportMetric(ms(percentile(polled, 0.99)), "polled_p99_ms")
	b.ReportMetric(ms(percentile(raw, 0.50)), "terraform_p50_ms")
	b.ReportMetric(ms(percentile(lag, 0.50)), "cli_minus_polled_p50_ms")
	b.ReportMetric(ms(percentile(cliAfterFinished, 0.50)), "cli_after_finished_p50_ms")
	b.ReportMetric(ms(percentile(cliAfterFinished, 0.99)), "cli_after_finished_p99_ms")
	b.ReportMetric(ms(percentile(polledAfterFinished, 0.50)), "polled_after_finished_p50_ms")
	b.ReportMetric(ms(percentile(polledAfterFinished, 0.99)), "polled_after_finished_p99_ms")
	b.ReportMetric(ms(percentile(cliToQueued, 0.50)), "cli_to_queued_p50_ms")
	b.ReportMetric(ms(percentile(polledToQueued, 0.50)), "polled_to_queued_p50_ms")
	b.ReportMetric(0, "ns/op")
}
