package executor_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// BenchmarkDockerOverhead runs the demo configuration (scripts/demo-repo)
// as a tracked, autodeployed run with local state through the process
// executor and through the Docker executor, one after the other in each
// iteration: with a container started in advance, as a launcher keeps one
// (KeepWarm, the steady state of a worker between runs), and without one
// (a cold start). Each run is timed from Start to its result. Reports the
// p50 and p99 of each and of Docker's extra time per run, and the ratio of
// the p50s.
//
//	go test ./services/worker/executor -run '^$' -bench DockerOverhead -benchtime 20x
func BenchmarkDockerOverhead(b *testing.B) {
	cli := requireDocker(b)
	repoURL := benchDemoRepo(b)
	commit := strings.TrimSpace(gitOutput(b, strings.TrimPrefix(repoURL, "file://"), "rev-parse", "HEAD"))
	proc := newHarnessFor(b, processKind, nil)
	warm := newHarnessFor(b, dockerKind, func(c *executor.Config) { c.Docker.KeepWarm = true })
	cold := newHarnessFor(b, dockerKind, nil)
	warm.exec.WarmUp("wkr_bench")
	label := testLabel + "=" + b.Name()
	used := ""
	timed := func(h *harness) time.Duration {
		j := executor.Job{Job: protocol.Job{
			RunID: "run_" + strconv.FormatInt(time.Now().UnixNano(), 36), StackID: "stk_bench",
			Type: run.Tracked, Autodeploy: true, RepositoryURL: repoURL, Commit: commit, Tool: stack.Terraform,
		}}
		rec := newRecorder()
		start := time.Now()
		res := h.run(b, j, rec)
		d := time.Since(start)
		if res.Status != run.Finished || !res.HasChanges {
			b.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
		}
		return d
	}
	var dProc, dWarm, dCold, extraWarm, extraCold []time.Duration
	for b.Loop() {
		b.StopTimer()
		used = waitWarm(b, cli, label, used) // the launcher had the time between runs
		b.StartTimer()
		p := timed(proc)
		w := timed(warm)
		c := timed(cold)
		dProc, dWarm, dCold = append(dProc, p), append(dWarm, w), append(dCold, c)
		extraWarm, extraCold = append(extraWarm, w-p), append(extraCold, c-p)
	}
	b.StopTimer()
	for _, s := range [][]time.Duration{dProc, dWarm, dCold, extraWarm, extraCold} {
		slices.Sort(s)
	}
	b.ReportMetric(ms(pct(dProc, 0.50)), "process_p50_ms")
	b.ReportMetric(ms(pct(dProc, 0.99)), "process_p99_ms")
	b.ReportMetric(ms(pct(dWarm, 0.50)), "docker_p50_ms")
	b.ReportMetric(ms(pct(dWarm, 0.99)), "docker_p99_ms")
	b.ReportMetric(ms(pct(extraWarm, 0.50)), "docker_extra_p50_ms")
	b.ReportMetric(ms(pct(extraWarm, 0.99)), "docker_extra_p99_ms")
	b.ReportMetric(float64(pct(dWarm, 0.50))/float64(pct(dProc, 0.50)), "docker/process_p50")
	b.ReportMetric(ms(pct(dCold, 0.50)), "cold_docker_p50_ms")
	b.ReportMetric(ms(pct(extraCold, 0.50)), "cold_docker_extra_p50_ms")
	b.ReportMetric(0, "ns/op")
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchDemoRepo makes the demo repository with scripts/demo-repo, as the
// README does, and returns its URL.
func benchDemoRepo(b *testing.B) string {
	b.Helper()
	cmd := exec.Command("../../../scripts/demo-repo", filepath.Join(b.TempDir(), "demo"))
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("scripts/demo-repo: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func gitOutput(b *testing.B, dir string, args ...string) string {
	b.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		b.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}
