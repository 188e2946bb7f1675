package executor_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// slowHook prints a marker, writes its pid and then sleeps in the same
// process (exec), so that the pid is the sleeping process's.
func slowHook(pidFile string) string {
	return "echo $$ > " + pidFile + "; echo started; exec sleep 30"
}

func TestStopDuringASlowHookEndsStopped(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		const grace = 5 * time.Second
		h := newHarnessFor(t, kind, func(c *executor.Config) { c.StopGrace = grace })
		pidFile := filepath.Join(h.shared, "pid")
		j := job(repo, commit)
		j.Hooks.BeforePlan = []string{slowHook(pidFile)}
		j.Hooks.AfterRun = []string{"echo after-run-hook"}
		rec := newRecorder()
		x := h.start(t, context.Background(), j, rec)
		rec.waitForLine(t, "started")
		pid := readPID(t, pidFile)
		stopped := time.Now()
		x.Stop()
		res := wait(t, x)
		elapsed := time.Since(stopped)
		rec.check(t)

		p, _ := res.Phase(run.PhasePlanning)
		if res.Status != run.Stopped || res.Note != "stopped on request" || p.ExitCode != 130 || p.Note != res.Note {
			t.Fatalf("result = %s %q, PLANNING exit %d %q\n%s", res.Status, res.Note, p.ExitCode, p.Note, rec.allLogs())
		}
		if elapsed >= grace {
			t.Errorf("stopping took %s, more than the grace period %s", elapsed, grace)
		}
		if len(res.Phases) != 3 || strings.Contains(rec.allLogs(), "after-run-hook") {
			t.Errorf("the run went on after the stop: phases %v\n%s", phaseNames(res), rec.allLogs())
		}
		if !strings.Contains(rec.log(run.PhasePlanning), "stopped on request: interrupting before_plan hook #1") {
			t.Errorf("the log does not say the hook was interrupted:\n%s", rec.log(run.PhasePlanning))
		}
		h.gone(t, j, pid)
		assertEmptyDir(t, h.cfg.WorkDir)
	})
}

func TestStopKillsWhatIgnoresTheInterrupt(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		const grace = 300 * time.Millisecond
		h := newHarnessFor(t, kind, func(c *executor.Config) { c.StopGrace = grace })
		pidFile := filepath.Join(h.shared, "pid")
		j := job(repo, commit)
		j.Hooks.BeforeInit = []string{"trap '' INT; " + slowHook(pidFile)} // sleep inherits the ignored SIGINT
		rec := newRecorder()
		x := h.start(t, context.Background(), j, rec)
		rec.waitForLine(t, "started")
		pid := readPID(t, pidFile)
		stopped := time.Now()
		x.Stop()
		res := wait(t, x)
		elapsed := time.Since(stopped)
		rec.check(t)
		p, _ := res.Phase(run.PhaseInitializing)
		if res.Status != run.Stopped || p.ExitCode != 137 {
			t.Fatalf("result = %s %q, INITIALIZING exit %d\n%s", res.Status, res.Note, p.ExitCode, rec.allLogs())
		}
		if elapsed < grace || elapsed > grace+10*time.Second {
			t.Errorf("stopping took %s with a grace period of %s", elapsed, grace)
		}
		h.gone(t, j, pid)
	})
}

// slowProvisioner writes its pid to var.pidfile and sleeps in a
// local-exec provisioner, which terraform runs with /bin/sh.
const slowProvisioner = `
variable "pidfile" {
  type = string
}

resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "echo $$ > ${var.pidfile}; echo provisioning; exec sleep 30"
  }
}
`

func TestStopDuringALocalExecProvisioner(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": slowProvisioner})
		h := newHarnessFor(t, kind, nil) // the default grace period
		pidFile := filepath.Join(h.shared, "pid")
		j := job(repo, commit)
		j.Env = []executor.Variable{{Name: "TF_VAR_pidfile", Value: pidFile}}
		rec := newRecorder()
		x := h.start(t, context.Background(), j, rec)
		rec.waitForLine(t, "\x1b[0mprovisioning") // terraform colors its output
		pid := readPID(t, pidFile)
		stopped := time.Now()
		x.Stop()
		res := wait(t, x)
		elapsed := time.Since(stopped)
		rec.check(t)
		if res.Status != run.Stopped || len(res.Phases) != 4 || res.Phases[3].Phase != run.PhaseApplying {
			t.Fatalf("result = %s %q phases=%v\n%s", res.Status, res.Note, phaseNames(res), rec.allLogs())
		}
		if elapsed >= executor.DefaultStopGrace {
			t.Errorf("stopping took %s, more than the grace period", elapsed)
		}
		if !strings.Contains(rec.log(run.PhaseApplying), "Interrupt received") {
			t.Errorf("terraform did not get the interrupt:\n%s", rec.log(run.PhaseApplying))
		}
		h.gone(t, j, pid)
	})
}

func TestCancelingTheContext(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		for _, tc := range []struct {
			cause      error
			wantStatus run.Status
			wantNote   string
		}{
			{executor.ErrStopRequested, run.Stopped, "stopped on request"},
			{errors.New("the launcher is shutting down"), run.Failed, "canceled: the launcher is shutting down"},
		} {
			t.Run(tc.cause.Error(), func(t *testing.T) {
				pidFile := filepath.Join(h.shared, "pid")
				j := job(repo, commit)
				j.Hooks.AfterInit = []string{slowHook(pidFile)}
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				rec := newRecorder()
				x := h.start(t, ctx, j, rec)
				rec.waitForLine(t, "started")
				cancel(tc.cause)
				res := wait(t, x)
				rec.check(t)
				if res.Status != tc.wantStatus || res.Note != tc.wantNote {
					t.Errorf("result = %s %q, want %s %q", res.Status, res.Note, tc.wantStatus, tc.wantNote)
				}
				h.gone(t, j, readPID(t, pidFile))
			})
		}
	})
}

func TestLogsTimeoutFailsASilentRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		const timeout = 2 * time.Second
		h := newHarnessFor(t, kind, func(c *executor.Config) { c.LogsTimeout = timeout })
		pidFile := filepath.Join(h.shared, "pid")
		j := job(repo, commit)
		j.Hooks.BeforeInit = []string{
			"for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.3; done", // 2.4 s in all, never 2 s silent
			slowHook(pidFile),
		}
		j.Hooks.AfterRun = []string{"echo after-run-hook"}
		rec := newRecorder()
		started := time.Now()
		res := h.run(t, j, rec)
		rec.check(t)
		want := "logs timeout: before_init hook #2 printed nothing for 2s"
		if res.Status != run.Failed || res.Note != want {
			t.Fatalf("result = %s %q, want FAILED %q\n%s", res.Status, res.Note, want, rec.allLogs())
		}
		p, _ := res.Phase(run.PhaseInitializing)
		if p.ExitCode != 130 || p.Note != want {
			t.Errorf("INITIALIZING exit %d note %q", p.ExitCode, p.Note)
		}
		log := rec.log(run.PhaseInitializing)
		if !strings.Contains(log, "tick 8") || !strings.Contains(log, want+": interrupting before_init hook #2") || strings.Contains(log, "after-run-hook") {
			t.Errorf("the INITIALIZING log:\n%s", log)
		}
		if elapsed := time.Since(started); elapsed > 20*time.Second {
			t.Errorf("the run took %s", elapsed)
		}
		h.gone(t, j, readPID(t, pidFile))
	})
}

func TestRunTimeoutFailsALongRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		timeout := 2 * time.Second
		if kind == dockerKind {
			timeout = 8 * time.Second // the planning phase must start first: a container takes seconds on a loaded machine
		}
		h := newHarnessFor(t, kind, func(c *executor.Config) { c.RunTimeout = timeout })
		j := job(repo, commit)
		j.Hooks.BeforePlan = []string{"while :; do echo still busy; sleep 0.2; done"}
		rec := newRecorder()
		started := time.Now()
		res := h.run(t, j, rec)
		elapsed := time.Since(started)
		rec.check(t)
		want := fmt.Sprintf("run timeout: the run took longer than %s", timeout)
		if res.Status != run.Failed || res.Note != want {
			t.Fatalf("result = %s %q, want FAILED %q\n%s", res.Status, res.Note, want, rec.allLogs())
		}
		if p, _ := res.Phase(run.PhasePlanning); p.Note != want || p.ExitCode == 0 {
			t.Errorf("PLANNING exit %d note %q", p.ExitCode, p.Note)
		}
		if elapsed < timeout || elapsed > timeout+executor.DefaultStopGrace {
			t.Errorf("the run took %s with a run timeout of %s", elapsed, timeout)
		}
	})
}

func TestARunStoppedBeforeItStartsRunsNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(executor.ErrStopRequested)
		rec := newRecorder()
		res := wait(t, h.start(t, ctx, job(repo, commit), rec))
		rec.check(t)
		if res.Status != run.Stopped || len(res.Phases) != 0 || len(rec.phases()) != 0 {
			t.Errorf("result = %s %q phases=%v reported=%v", res.Status, res.Note, phaseNames(res), rec.phases())
		}
		assertEmptyDir(t, h.cfg.WorkDir)
	})
}
