package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// The benchmarks of issue 5: runs of the demo configuration on pools of
// real `gantry launcher` processes running real terraform, timed with the
// server's history timestamps so the client's polling is not measured.

// BenchmarkOrchestrationOverhead compares a tracked, autodeployed run with
// managed state on a pool of 2 launchers (trigger call to the FINISHED
// event) with the same configuration run directly: `terraform init`, `plan
// -out`, `apply` of the plan in a fresh copy of the checkout with local
// state. Each iteration runs both, one after the other, and creates a new
// stack first so that, like the direct run's fresh directory, the run starts
// from empty state and applies two creations. Reports the overhead
// (gantry − direct) p50/p99 and the p50 of both durations, and logs the
// p50/p99 of each phase and the CPU time a run costs (with -v).
//
//	go test -run '^$' -bench OrchestrationOverhead -benchtime 30x ./cmd/gantry
func BenchmarkOrchestrationOverhead(b *testing.B) {
	benchmarkOverhead(b, demoRepo(b))
}

// BenchmarkOverheadByConfigurationSize is BenchmarkOrchestrationOverhead
// with configurations of n independent terraform_data resources: what
// Gantry adds to a run is mostly per run and per phase, what terraform
// spends grows with the configuration, and the CPU ratio with it tells how
// much of the demo configuration's ratio is its being almost empty.
//
//	go test -run '^$' -bench OverheadByConfigurationSize -benchtime 10x ./cmd/gantry
func BenchmarkOverheadByConfigurationSize(b *testing.B) {
	for _, n := range []int{10, 50, 200} {
		b.Run(fmt.Sprintf("resources=%d", n), func(b *testing.B) {
			benchmarkOverhead(b, sizedRepo(b, n))
		})
	}
}

// sizedRepo makes a repository whose configuration has n independent
// terraform_data resources and one output, and returns its URL.
func sizedRepo(tb testing.TB, n int) string {
	tb.Helper()
	var tf strings.Builder
	for i := range n {
		fmt.Fprintf(&tf, "resource \"terraform_data\" \"r%d\" {\n  input = \"resource %d\"\n}\n\n", i, i)
	}
	tf.WriteString("output \"first\" {\n  value = terraform_data.r0.output\n}\n")
	return newTestRepo(tb, tf.String()).url()
}

// benchmarkOverhead is BenchmarkOrchestrationOverhead on the configuration
// of repo.
func benchmarkOverhead(b *testing.B, repo string) {
	srv := startServer(b)
	c := srv.as(srv.adminToken(b))
	pool := startLauncherPool(b, srv, "bench-overhead", 2)
	direct := newDirectRunner(b, repo)
	postmaster := serverPostmaster(b, srv)

	var overhead, dDirect, dGantry, cDirect []time.Duration
	var cpu []cpuUse
	var ratios []float64
	phases := map[string][]time.Duration{}
	events0 := srv.eventCount(b)
	i := 0
	for b.Loop() {
		i++
		cpuDirect := direct.cpu
		dd, steps := direct.run(b, false)
		cd := direct.cpu - cpuDirect
		dDirect, cDirect = append(dDirect, dd), append(cDirect, cd)
		for k, v := range steps {
			phases["direct "+k] = append(phases["direct "+k], v)
		}
		for k, v := range direct.extras(b) {
			phases[k] = append(phases[k], v)
		}
		wall, cpuGit := checkoutTime(b, repo)
		phases["(git clone+checkout alone)"] = append(phases["(git clone+checkout alone)"], wall)
		phases["(git clone+checkout alone, CPU)"] = append(phases["(git clone+checkout alone, CPU)"], cpuGit)

		stack := c.createStack(b, &gantryv1.CreateStackRequest{Name: fmt.Sprintf("overhead-%d", i), RepositoryUrl: repo, WorkerPoolId: pool.id, Autodeploy: true, ManagedState: true})
		cpu0 := cpuNow(b, pool, postmaster)
		t0 := time.Now()
		r := c.waitRunEnd(b, c.trigger(b, stack, gantryv1.RunType_RUN_TYPE_TRACKED))
		used := cpuNow(b, pool, postmaster).sub(cpu0)
		cpu = append(cpu, used)
		ratios = append(ratios, float64(used.gantry())/float64(cd))
		end := historyTime(b, r, gantryv1.RunState_RUN_STATE_FINISHED)
		dg := end.Sub(t0)
		dGantry = append(dGantry, dg)
		overhead = append(overhead, dg-dd)
		for k, v := range phaseDurations(t0, r) {
			phases["gantry "+k] = append(phases["gantry "+k], v)
		}
	}
	b.StopTimer()
	events := srv.eventCount(b) - events0
	for _, ds := range [][]time.Duration{overhead, dDirect, dGantry, cDirect} {
		slices.Sort(ds)
	}
	slices.Sort(ratios)
	var sum cpuUse
	var sumDirect time.Duration
	for i, u := range cpu {
		sum, sumDirect = sum.add(u), sumDirect+cDirect[i]
	}
	mean := sum.div(len(cpu))
	meanDirect := sumDirect / time.Duration(len(cpu))
	b.ReportMetric(ms(percentile(overhead, 0.50)), "overhead_p50_ms")
	b.ReportMetric(ms(percentile(overhead, 0.99)), "overhead_p99_ms")
	b.ReportMetric(ms(percentile(dDirect, 0.50)), "direct_p50_ms")
	b.ReportMetric(ms(percentile(dGantry, 0.50)), "gantry_p50_ms")
	b.ReportMetric(ratios[len(ratios)/2], "cpu_ratio_p50")
	b.ReportMetric(float64(mean.gantry())/float64(meanDirect), "cpu_ratio_mean")
	b.ReportMetric(float64(mean.gantry()+mean.postgres)/float64(meanDirect), "cpu_ratio_pg_mean")
	b.ReportMetric(ms(meanDirect), "direct_cpu_ms")
	b.ReportMetric(ms(mean.gantry()), "gantry_cpu_ms")
	b.ReportMetric(ms(mean.server), "server_cpu_ms")
	b.ReportMetric(ms(mean.launchers), "launchers_cpu_ms")
	b.ReportMetric(ms(mean.tools), "tools_cpu_ms")
	b.ReportMetric(ms(mean.postgres), "postgres_cpu_ms")
	b.ReportMetric(0, "ns/op")
	logPhases(b, phases)
	b.Logf("CPU per gantry run (mean, including the client's wait, as `run trigger --wait` does): %v", mean)
	b.Logf("CPU per direct run (mean, terraform's user+sys, init+plan+apply): %.0f ms; gantry (server+launchers+git/terraform) ÷ direct: mean %.2f, p50 of the iterations' ratios %.2f; with PostgreSQL: %.2f",
		ms(meanDirect), float64(mean.gantry())/float64(meanDirect), ratios[len(ratios)/2], float64(mean.gantry()+mean.postgres)/float64(meanDirect))
	b.Logf("events appended per iteration (stack creation included): %.1f: %s", float64(events)/float64(len(cpu)), srv.eventTypesAfter(b, events0, len(cpu)))
}

// BenchmarkPickUpLatency measures, with 8 idle launcher workers, the time
// from a run's READY event to its PREPARING event, which the worker reports
// once it has taken the assignment. Runs are PROPOSED (they take no stack
// lock) and triggered one at a time, each after the previous one ended.
// Reports p50_ms and p99_ms.
//
//	go test -run '^$' -bench PickUpLatency -benchtime 100x ./cmd/gantry
func BenchmarkPickUpLatency(b *testing.B) {
	srv := startServer(b)
	c := srv.as(srv.adminToken(b))
	pool := startLauncherPool(b, srv, "bench-pickup", 8)
	repo := demoRepo(b)
	stack := c.createStack(b, &gantryv1.CreateStackRequest{Name: "pickup", RepositoryUrl: repo, WorkerPoolId: pool.id, Autodeploy: true, ManagedState: true})

	var latencies []time.Duration
	for b.Loop() {
		r := c.waitRunState(b, c.trigger(b, stack, gantryv1.RunType_RUN_TYPE_PROPOSED), gantryv1.RunState_RUN_STATE_FINISHED)
		ready := historyTime(b, r, gantryv1.RunState_RUN_STATE_READY)
		preparing := historyTime(b, r, gantryv1.RunState_RUN_STATE_PREPARING)
		latencies = append(latencies, preparing.Sub(ready))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(ms(percentile(latencies, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(latencies, 0.99)), "p99_ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max_ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThroughput triggers 200 tracked, autodeployed runs with managed
// state (10 on each of 20 stacks, from 4 goroutines) on 8 launcher workers
// and waits until all are FINISHED. Wall time runs from the first trigger
// call to the last FINISHED event. On each stack the first run applies two
// creations and the other nine plan no changes and end after the plan, so
// the direct baseline is 20 full direct runs plus 180 direct no-change runs
// (init, plan against the applied state) at the medians of 5 of each
// measured first; overhead = wall − baseline/8.
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./cmd/gantry
func BenchmarkThroughput(b *testing.B) {
	const (
		workers       = 8
		stacks        = 20
		runsPerStack  = 10
		triggerers    = 4
		directSamples = 5
	)
	srv := startServer(b)
	c := srv.as(srv.adminToken(b))
	pool := startLauncherPool(b, srv, "bench-throughput", workers)
	repo := demoRepo(b)
	direct := newDirectRunner(b, repo)
	var full, noop, fullCPU, noopCPU []time.Duration
	for range directSamples {
		cpu := direct.cpu
		d, _ := direct.run(b, false)
		full, fullCPU = append(full, d), append(fullCPU, direct.cpu-cpu)
		cpu = direct.cpu
		d, _ = direct.run(b, true)
		noop, noopCPU = append(noop, d), append(noopCPU, direct.cpu-cpu)
	}
	for _, ds := range [][]time.Duration{full, noop, fullCPU, noopCPU} {
		slices.Sort(ds)
	}
	// allRuns is the time of every run of the benchmark, done directly.
	allRuns := func(full, noop []time.Duration) time.Duration {
		return time.Duration(stacks) * (percentile(full, 0.5) + time.Duration(runsPerStack-1)*percentile(noop, 0.5))
	}
	baseline := allRuns(full, noop)
	// What the direct runs need of the machine's CPUs, a bound on their
	// wall time no number of workers can beat.
	cpuBound := allRuns(fullCPU, noopCPU) / time.Duration(runtime.NumCPU())

	ids := make([]string, stacks)
	for s := range ids {
		ids[s] = c.createStack(b, &gantryv1.CreateStackRequest{Name: fmt.Sprintf("throughput-%d", s), RepositoryUrl: repo, WorkerPoolId: pool.id, Autodeploy: true, ManagedState: true})
	}
	for b.Loop() {
		runs := make([][]string, triggerers)
		errs := make([]error, triggerers)
		busy0, total0 := machineCPU(b)
		cpu0 := cpuNow(b, pool, serverPostmaster(b, srv))
		start := time.Now()
		var wg sync.WaitGroup
		for g := range triggerers {
			wg.Go(func() {
				for range runsPerStack {
					for s := g; s < stacks; s += triggerers {
						ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
						res, err := c.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: ids[s], Type: gantryv1.RunType_RUN_TYPE_TRACKED}))
						cancel()
						if err != nil {
							errs[g] = err
							return
						}
						runs[g] = append(runs[g], res.Msg.GetRun().GetId())
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		var last time.Time
		var ended []*gantryv1.Run
		for _, id := range slices.Concat(runs...) {
			r := c.waitRunState(b, id, gantryv1.RunState_RUN_STATE_FINISHED)
			ended = append(ended, r)
			if end := historyTime(b, r, gantryv1.RunState_RUN_STATE_FINISHED); end.After(last) {
				last = end
			}
		}
		busy1, total1 := machineCPU(b)
		cpu := cpuNow(b, pool, serverPostmaster(b, srv)).sub(cpu0)
		b.Logf("CPU during the runs: %v", cpu)
		wall := last.Sub(start)
		var waits, durations []time.Duration
		for _, r := range ended {
			prep := historyTime(b, r, gantryv1.RunState_RUN_STATE_PREPARING)
			waits = append(waits, prep.Sub(historyTime(b, r, gantryv1.RunState_RUN_STATE_READY)))
			durations = append(durations, historyTime(b, r, gantryv1.RunState_RUN_STATE_FINISHED).Sub(prep))
		}
		slices.Sort(waits)
		slices.Sort(durations)
		b.Logf("READY→PREPARING (waiting for a worker) p50 %.0f ms, p99 %.0f ms; PREPARING→FINISHED p50 %.0f ms, p99 %.0f ms; "+
			"machine CPU busy %.0f %% of %d CPUs from the first trigger until all runs were seen FINISHED; direct CPU (user+sys) p50 %.0f ms full, %.0f ms no-change",
			ms(percentile(waits, 0.5)), ms(percentile(waits, 0.99)), ms(percentile(durations, 0.5)), ms(percentile(durations, 0.99)),
			100*float64(busy1-busy0)/float64(total1-total0), runtime.NumCPU(), ms(percentile(fullCPU, 0.5)), ms(percentile(noopCPU, 0.5)))
		b.ReportMetric(cpuBound.Seconds(), "baseline_cpu_bound_s")
		b.ReportMetric(float64(stacks*runsPerStack)/wall.Minutes(), "runs/min")
		b.ReportMetric(wall.Seconds(), "wall_s")
		b.ReportMetric((wall - baseline/workers).Seconds(), "overhead_s")
		b.ReportMetric(baseline.Seconds()/workers, "baseline_s")
		b.ReportMetric(ms(percentile(full, 0.5)), "direct_full_p50_ms")
		b.ReportMetric(ms(percentile(noop, 0.5)), "direct_noop_p50_ms")
		b.ReportMetric(0, "ns/op")
	}
}

// benchPool is a private pool of launcher processes a benchmark started.
// cpuUse is CPU time (user + system) spent so far, split by where.
type cpuUse struct {
	server    time.Duration // this process: the server, its embedded NATS and the benchmark's client
	launchers time.Duration // the launcher processes themselves
	tools     time.Duration // their ended children: git, terraform, hooks
	postgres  time.Duration // the server's PostgreSQL: the postmaster and its processes (0 if not attributed)
	machine   time.Duration // every process of the machine, PostgreSQL included
}

func (u cpuUse) sub(v cpuUse) cpuUse {
	return cpuUse{u.server - v.server, u.launchers - v.launchers, u.tools - v.tools, u.postgres - v.postgres, u.machine - v.machine}
}

func (u cpuUse) add(v cpuUse) cpuUse {
	return cpuUse{u.server + v.server, u.launchers + v.launchers, u.tools + v.tools, u.postgres + v.postgres, u.machine + v.machine}
}

func (u cpuUse) div(n int) cpuUse {
	d := time.Duration(n)
	return cpuUse{u.server / d, u.launchers / d, u.tools / d, u.postgres / d, u.machine / d}
}

// gantry is what Gantry's own processes spent: server, launchers, and the
// launchers' children (git, terraform).
func (u cpuUse) gantry() time.Duration { return u.server + u.launchers + u.tools }

func (u cpuUse) String() string {
	return fmt.Sprintf("server process %.0f ms, launchers %.0f ms, git/terraform %.0f ms, PostgreSQL %.0f ms, rest of the machine (kernel, other processes) %.0f ms",
		ms(u.server), ms(u.launchers), ms(u.tools), ms(u.postgres), ms(u.machine-u.server-u.launchers-u.tools-u.postgres))
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuNow reads the CPU time of this process (getrusage), of the pool's
// launchers and their reaped children (/proc/PID/stat: utime+stime, and
// cutime+cstime, which hold git's and terraform's, provider plugins
// included), of the server's PostgreSQL (postmaster pid: its own time, its
// ended children's, and its live children's) and of the whole machine
// (/proc/stat).
func cpuNow(tb testing.TB, p *launcherPool, postmaster int) cpuUse {
	tb.Helper()
	var u cpuUse
	// The reading itself (a walk of /proc) is the benchmark's, not the
	// server's: its thread's time is left out of the server's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU(tb)
	defer func() { measuringCPU += threadCPU(tb) - start }()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	u.server = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) - measuringCPU
	for _, proc := range p.procs {
		st, ok := procStat(proc.cmd.Process.Pid)
		if !ok {
			tb.Fatalf("no /proc/%d/stat for a launcher", proc.cmd.Process.Pid)
		}
		u.launchers += st.self
		u.tools += st.children
	}
	if postmaster > 0 {
		if st, ok := procStat(postmaster); ok {
			u.postgres = st.self + st.children
		}
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if st, ok := procStat(pid); ok && st.ppid == postmaster {
				u.postgres += st.self
			}
		}
	}
	busy, _ := machineCPU(tb)
	u.machine = time.Duration(busy) * clockTick
	return u
}

// measuringCPU is the CPU time cpuNow spent so far.
var measuringCPU time.Duration

// threadCPU is the CPU time of the calling thread.
func threadCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stat is what cpuNow reads of /proc/PID/stat.
type stat struct {
	ppid           int
	self, children time.Duration
}

// procStat reads /proc/pid/stat; false if the process is gone.
func procStat(pid int) (stat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	// Fields after "(comm)": state is field 3, ppid 4, utime..cstime 14..17.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 15 {
		return stat{}, false
	}
	n := func(i int) uint64 {
		v, _ := strconv.ParseUint(f[i-3], 10, 64)
		return v
	}
	tick := func(i int) time.Duration { return time.Duration(n(i)) * clockTick }
	return stat{ppid: int(n(4)), self: tick(14) + tick(15), children: tick(16) + tick(17)}, true
}

// serverPostmaster finds the PID of the PostgreSQL server s uses, through the
// parent of one of its backends; 0 when that cluster's processes are not
// this machine's.
func serverPostmaster(tb testing.TB, s *testServer) int {
	tb.Helper()
	var backend int
	if err := s.pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		tb.Fatal(err)
	}
	st, ok := procStat(backend)
	if !ok {
		return 0
	}
	return st.ppid
}

// historyTime is the server's time of the run's first entry into state.
func historyTime(tb testing.TB, r *gantryv1.Run, state gantryv1.RunState) time.Time {
	tb.Helper()
	h, ok := entered(r, state)
	if !ok {
		tb.Fatalf("run %s never was %s; history:\n%s", r.GetId(), runStateName(state), historyText(r))
	}
	return h.GetTime().AsTime()
}

// phaseDurations splits a run from the client's trigger time t0 into the
// time spent before each history entry, keyed by the state entered.
func phaseDurations(t0 time.Time, r *gantryv1.Run) map[string]time.Duration {
	out := map[string]time.Duration{}
	prev, prevName := t0, "trigger"
	for _, h := range r.GetHistory() {
		at := h.GetTime().AsTime()
		name := prevName + "→" + runStateName(h.GetState())
		out[name] += at.Sub(prev)
		prev, prevName = at, runStateName(h.GetState())
	}
	return out
}

// logPhases logs the p50 and p99 of each named phase, in name order (run
// with -v to see all lines).
func logPhases(b *testing.B, phases map[string][]time.Duration) {
	var lines []string
	for name, ds := range phases {
		slices.Sort(ds)
		lines = append(lines, fmt.Sprintf("%-44s p50 %7.1f ms  p99 %7.1f ms", name, ms(percentile(ds, 0.5)), ms(percentile(ds, 0.99))))
	}
	slices.Sort(lines)
	b.Log("phases (gantry A→B: from entering A to entering B; trigger: the client's time before TriggerRun):\n" + strings.Join(lines, "\n"))
}

// machineCPU reads the busy and total jiffies of all CPUs from /proc/stat.
func machineCPU(tb testing.TB) (busy, total uint64) {
	tb.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Skipf("no /proc/stat: %v", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	// user nice system idle iowait irq softirq steal; guest time is
	// already in user.
	fields := strings.Fields(line)
	if len(fields) < 9 {
		tb.Fatalf("/proc/stat: %q", line)
	}
	for i, f := range fields[1:9] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			tb.Fatalf("/proc/stat: %q", line)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// directRunner runs the demo configuration with terraform directly, as a
// script would, each time in a fresh copy of one checkout.
type directRunner struct {
	tool     string
	checkout string
	state    string        // terraform.tfstate after an apply, for no-change runs
	cpu      time.Duration // user and system time of every tool process run so far
	last     string        // the directory of the last run
}

func newDirectRunner(tb testing.TB, repo string) *directRunner {
	tb.Helper()
	tool, err := exec.LookPath("terraform")
	if err != nil {
		if tool, err = exec.LookPath("tofu"); err != nil {
			tb.Skip("neither terraform nor tofu is on PATH")
		}
	}
	checkout := filepath.Join(tb.TempDir(), "checkout")
	if out, err := exec.Command("git", "clone", "-q", repo, checkout).CombinedOutput(); err != nil {
		tb.Fatalf("git clone: %v\n%s", err, out)
	}
	return &directRunner{tool: tool, checkout: checkout}
}

// checkoutTime times what a worker's PREPARING spent in git before the
// repository cache: `git clone --no-checkout` of repo and `git checkout
// --detach` of its head, and returns their wall and CPU time. It is not
// part of the direct run; it tells how much a clone per run costs.
func checkoutTime(tb testing.TB, repo string) (wall, cpu time.Duration) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "source")
	start := time.Now()
	for _, args := range [][]string{
		{"clone", "--no-checkout", "--quiet", "--", strings.TrimPrefix(repo, "file://"), dir},
		{"-C", dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", "HEAD^{commit}"},
	} {
		cmd := exec.Command("git", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return time.Since(start), cpu
}

// extras runs, after a full run, what a Gantry run adds in terraform
// processes, `show -json` of the plan and `output -json`, and returns the
// wall and CPU time of each (not counted in d.cpu).
func (d *directRunner) extras(tb testing.TB) map[string]time.Duration {
	tb.Helper()
	out := map[string]time.Duration{}
	for _, args := range [][]string{{"show", "-json", "p"}, {"output", "-json"}} {
		cmd := exec.Command(d.tool, args...)
		cmd.Dir = d.last
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1")
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("%s %s: %v\n%s", d.tool, strings.Join(args, " "), err, out)
		}
		name := "(" + strings.Join(args[:2], " ") + " alone"
		out[name+")"] = time.Since(t0)
		out[name+", CPU)"] = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return out
}

// run copies the checkout (without .git) to a fresh directory and times
// init, plan -out and, unless noop, apply of the plan, with local state.
// With noop the directory gets the state of an earlier apply, so the plan
// has no changes, as on a stack's later runs. The copy is not timed.
func (d *directRunner) run(tb testing.TB, noop bool) (time.Duration, map[string]time.Duration) {
	tb.Helper()
	dir := tb.TempDir()
	entries, err := os.ReadDir(d.checkout)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d.checkout, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if noop {
		if d.state == "" {
			d.run(tb, false)
		}
		if err := os.WriteFile(filepath.Join(dir, "terraform.tfstate"), []byte(d.state), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	steps := [][]string{{"init", "-input=false"}, {"plan", "-input=false", "-out=p"}, {"apply", "-input=false", "p"}}
	if noop {
		steps = steps[:2]
	}
	times := map[string]time.Duration{}
	start := time.Now()
	for _, args := range steps {
		t0 := time.Now()
		cmd := exec.Command(d.tool, args...)
		cmd.Dir = dir
		// As the executor sets them (services/worker/executor/env.go).
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("%s %s: %v\n%s", d.tool, strings.Join(args, " "), err, out)
		}
		times[args[0]] = time.Since(t0)
		d.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	total := time.Since(start)
	d.last = dir
	if !noop && d.state == "" {
		state, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
		if err != nil {
			tb.Fatal(err)
		}
		d.state = string(state)
	}
	return total, times
}
