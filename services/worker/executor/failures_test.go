package executor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
)

func TestFailingBeforePlanHookFailsPlanning(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Debug = true
		j.Hooks.BeforePlan = []string{"echo checking policy", `echo "policy says no" >&2; exit 3`, "echo never"}
		j.Hooks.AfterRun = []string{"echo after-run-hook"}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		want := []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning}
		if res.Status != run.Failed || res.Note != "before_plan hook #2 exited with code 3" || !slices.Equal(phaseNames(res), want) {
			t.Fatalf("result = %s %q phases=%v\n%s", res.Status, res.Note, phaseNames(res), rec.allLogs())
		}
		p, _ := res.Phase(run.PhasePlanning)
		if p.ExitCode != 3 || p.Note != res.Note || p.HasChanges {
			t.Errorf("PLANNING: exit %d, note %q, changes %v", p.ExitCode, p.Note, p.HasChanges)
		}
		log := rec.log(run.PhasePlanning)
		for _, s := range []string{"checking policy\n", "policy says no\n", "before_plan hook #2 exited with code 3\n", "after-run-hook\n"} {
			if !strings.Contains(log, s) {
				t.Errorf("the PLANNING log lacks %q:\n%s", s, log)
			}
		}
		if strings.Contains(log, "never") || strings.Contains(log, "+ terraform plan") {
			t.Errorf("PLANNING went on after the failing hook:\n%s", log)
		}
	})
}

func TestFailingToolFailsItsPhase(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig + "\nresource \"terraform_data\" \"broken\" {\n  input = var.undeclared\n}\n"})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Hooks.AfterRun = []string{"echo after-run-hook"}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		p := res.Phases[len(res.Phases)-1]
		if res.Status != run.Failed || p.Phase != run.PhasePlanning || p.ExitCode != 1 || res.Note != "terraform plan exited with code 1" {
			t.Fatalf("result = %s %q, last phase %s exit %d\n%s", res.Status, res.Note, p.Phase, p.ExitCode, rec.allLogs())
		}
		if log := rec.log(run.PhasePlanning); !strings.Contains(log, "undeclared") || !strings.Contains(log, "after-run-hook") {
			t.Errorf("the PLANNING log:\n%s", log)
		}
	})
}

func TestMissingToolIsNamed(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		bin := t.TempDir() // a PATH with git and sh only
		for _, name := range []string{"git", "sh"} {
			p, err := exec.LookPath(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
				t.Fatal(err)
			}
		}
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, func(c *executor.Config) { c.Path = bin })
		j := job(repo, commit)
		j.Tool = stack.OpenTofu
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		want := fmt.Sprintf(`the stack's tool: tofu is not installed on this worker: no executable "tofu" in PATH %s`, bin)
		if res.Status != run.Failed || res.Note != want || len(res.Phases) != 1 || res.Phases[0].ExitCode != executor.ExitNoProcess {
			t.Fatalf("result = %s %q phases=%v, want FAILED %q", res.Status, res.Note, phaseNames(res), want)
		}
		if !strings.Contains(rec.log(run.PhasePreparing), want) {
			t.Errorf("the PREPARING log:\n%s", rec.log(run.PhasePreparing))
		}
	})
}

func TestProjectRootMustBeInsideTheCheckout(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig, "file.txt": "not a directory"})
	if err := os.Symlink("..", filepath.Join(repo.dir, "up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(repo.dir, "etc")); err != nil {
		t.Fatal(err)
	}
	commit2 := repo.commit(nil)
	h := newHarness(t, nil)
	for root, want := range map[string]string{
		"up":                       `project root "up" leads outside the repository`,
		"up/gantry-workspace.json": `project root "up/gantry-workspace.json" leads outside the repository`,
		"etc":                      `project root "etc" leads outside the repository`,
		"missing":                  `project root "missing" does not exist in the repository at this commit`,
		"file.txt":                 `project root "file.txt" is not a directory`,
	} {
		j := job(repo, commit2)
		j.ProjectRoot = root
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Failed || res.Note != want || len(res.Phases) != 1 {
			t.Errorf("root %q: result = %s %q phases=%v, want FAILED %q", root, res.Status, res.Note, phaseNames(res), want)
		}
	}
	j := job(repo, commit)
	j.ProjectRoot = "../elsewhere"
	if _, err := h.exec.Start(context.Background(), j, newRecorder()); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("a root out of the repository: Start = %v, want a validation error", err)
	}
}

func TestInvalidJobsAreRefused(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarness(t, nil)
	for name, mod := range map[string]func(*executor.Job){
		"run id":             func(j *executor.Job) { j.RunID = "stk_notarun" },
		"stack id":           func(j *executor.Job) { j.StackID = "" },
		"type":               func(j *executor.Job) { j.Type = "DRIFT" },
		"tool":               func(j *executor.Job) { j.Tool = "pulumi" },
		"short commit":       func(j *executor.Job) { j.Commit = commit[:7] },
		"commit option":      func(j *executor.Job) { j.Commit = "--upload-pack=x" },
		"repository option":  func(j *executor.Job) { j.RepositoryURL = "--upload-pack=touch /tmp/x" },
		"absolute root":      func(j *executor.Job) { j.ProjectRoot = "/etc" },
		"task without cmd":   func(j *executor.Job) { j.Type = run.Task },
		"command of a plan":  func(j *executor.Job) { j.TaskCommand = "echo" },
		"confirmed proposed": func(j *executor.Job) { j.Type, j.Confirmed = run.Proposed, true },
		"variable name":      func(j *executor.Job) { j.Env = []executor.Variable{{Name: "A=B", Value: "x"}} },
		"variable scope":     func(j *executor.Job) { j.Env = []executor.Variable{{Name: "A", Scope: "SOMETIMES"}} },
		"variable twice":     func(j *executor.Job) { j.Whitelist = []executor.Variable{{Name: "A"}, {Name: "A"}} },
		"NUL in a value":     func(j *executor.Job) { j.Env = []executor.Variable{{Name: "A", Value: "a\x00b"}} },
	} {
		j := job(repo, commit)
		mod(&j)
		if x, err := h.exec.Start(context.Background(), j, newRecorder()); !errors.Is(err, domain.ErrInvalid) {
			if x != nil {
				x.Stop()
				<-x.Done()
			}
			t.Errorf("%s: Start = %v, want a validation error", name, err)
		}
	}
}

func TestReporterCanRefuseAPhase(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarness(t, nil)
	for _, tc := range []struct {
		err        error
		wantStatus run.Status
	}{
		{fmt.Errorf("the server says: %w", executor.ErrStopRequested), run.Stopped},
		{errors.New("the run was canceled"), run.Failed},
	} {
		rec := newRecorder()
		rec.failStart = map[run.Phase]error{run.PhasePlanning: tc.err}
		res := h.run(t, job(repo, commit), rec)
		rec.check(t)
		want := []run.Phase{run.PhasePreparing, run.PhaseInitializing}
		if res.Status != tc.wantStatus || !strings.Contains(res.Note, tc.err.Error()) || !slices.Equal(phaseNames(res), want) {
			t.Errorf("%v: result = %s %q phases=%v", tc.err, res.Status, res.Note, phaseNames(res))
		}
	}
}
