package executor_test

import (
	"context"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
)

func TestTrackedAutodeployRunAppliesWithLocalBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		t.Setenv("GANTRY_TEST_LAUNCHER_ONLY", "leaked")
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Hooks = stack.Hooks{
			BeforeInit: []string{
				`echo "run=$GANTRY_RUN_ID stack=$GANTRY_STACK_ID type=$GANTRY_RUN_TYPE tfvar=$TF_VAR_gantry_run_id tfstack=$TF_VAR_gantry_stack_id automation=$TF_IN_AUTOMATION input=$TF_INPUT"`,
				`echo "home=$HOME"; echo "tmp=$TMPDIR"; echo "launcher=${GANTRY_TEST_LAUNCHER_ONLY:-absent}"`,
			},
			AfterApply: []string{"test -f terraform.tfstate", "terraform state list"},
			AfterRun:   []string{"echo after-run-hook"},
		}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)

		if res.Status != run.Finished || res.Note != "" || !res.HasChanges {
			t.Fatalf("result = %s %q changes=%v\n%s", res.Status, res.Note, res.HasChanges, rec.allLogs())
		}
		want := []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning, run.PhaseApplying}
		if got := phaseNames(res); !slices.Equal(got, want) {
			t.Fatalf("phases = %v, want %v", got, want)
		}
		if got := rec.phases(); !slices.Equal(got, want) {
			t.Fatalf("reported phases = %v, want %v", got, want)
		}
		for _, p := range res.Phases {
			if p.ExitCode != 0 || p.Duration <= 0 || p.Started.IsZero() || p.Note != "" {
				t.Errorf("%s: exit %d, duration %s, started %s, note %q", p.Phase, p.ExitCode, p.Duration, p.Started, p.Note)
			}
			if p.HasChanges != (p.Phase == run.PhasePlanning) {
				t.Errorf("%s: has changes = %v", p.Phase, p.HasChanges)
			}
		}
		initLog := rec.log(run.PhaseInitializing)
		for _, s := range []string{
			"run=" + j.RunID + " stack=stk_demo type=TRACKED tfvar=" + j.RunID + " tfstack=stk_demo automation=1 input=0",
			"home=" + h.workspace(j), "tmp=" + h.workspace(j),
			"launcher=absent", "Terraform has been successfully initialized",
		} {
			if !strings.Contains(initLog, s) {
				t.Errorf("the INITIALIZING log lacks %q:\n%s", s, initLog)
			}
		}
		applyLog := rec.log(run.PhaseApplying)
		for _, s := range []string{"Apply complete! Resources: 1 added", "terraform_data.demo\n", "after-run-hook"} {
			if !strings.Contains(applyLog, s) {
				t.Errorf("the APPLYING log lacks %q:\n%s", s, applyLog)
			}
		}
		if strings.Contains(rec.log(run.PhasePlanning), "after-run-hook") {
			t.Error("after_run ran after PLANNING although the run went on to APPLYING")
		}
		assertEmptyDir(t, h.cfg.WorkDir)
	})
}

func TestOverrideFileIsWrittenInTheProjectRoot(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{
			"main.tf":                              "this is not a terraform configuration: only the project root is read",
			"infra/app/main.tf":                    demoConfig,
			"infra/app/" + executor.OverrideFile:   "the repository's own override, which must be replaced",
			"infra/other/" + executor.OverrideFile: "untouched",
		})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.ProjectRoot = "infra/app"
		j.Debug = true
		j.BackendOverride = []byte("terraform {\n  backend \"local\" {\n    path = \"override.tfstate\"\n  }\n}\n")
		j.Hooks.AfterInit = []string{"cat " + executor.OverrideFile, "cat ../other/" + executor.OverrideFile}
		j.Hooks.AfterApply = []string{`test -s override.tfstate && test ! -e terraform.tfstate && echo "state is where the override says"`}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Finished {
			t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
		}
		for phase, wants := range map[run.Phase][]string{
			run.PhasePreparing:    {"+ git -c advice.detachedHead=false checkout --quiet --detach " + commit, "Wrote the backend override infra/app/" + executor.OverrideFile},
			run.PhaseInitializing: {"+ terraform init -input=false", `path = "override.tfstate"`, "untouched"},
			run.PhasePlanning:     {"+ terraform plan -input=false -out=", "-detailed-exitcode"},
			run.PhaseApplying:     {"+ terraform apply -input=false ", "state is where the override says"},
		} {
			for _, s := range wants {
				if !strings.Contains(rec.log(phase), s) {
					t.Errorf("the %s log lacks %q:\n%s", phase, s, rec.log(phase))
				}
			}
		}
	})
}

func TestProposedRunEndsAfterPlanning(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Type = run.Proposed
		j.Hooks.AfterRun = []string{"echo after-run-hook"}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		want := []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning}
		if res.Status != run.Finished || !res.HasChanges || !slices.Equal(phaseNames(res), want) {
			t.Fatalf("result = %s %q changes=%v phases=%v\n%s", res.Status, res.Note, res.HasChanges, phaseNames(res), rec.allLogs())
		}
		planLog := rec.log(run.PhasePlanning)
		for _, s := range []string{"1 to add", "after-run-hook"} {
			if !strings.Contains(planLog, s) {
				t.Errorf("the PLANNING log lacks %q:\n%s", s, planLog)
			}
		}
		if ok, err := h.bucket.Exists(context.Background(), executor.WorkspaceKey(j.RunID)); err != nil || ok {
			t.Errorf("a proposed run saved its workspace (exists=%v, %v)", ok, err)
		}
	})
}

func TestPlanWithoutChangesFinishesWithoutApplying(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": noChangesConfig})
		h := newHarnessFor(t, kind, nil)
		for _, autodeploy := range []bool{true, false} {
			j := job(repo, commit)
			j.Autodeploy = autodeploy
			rec := newRecorder()
			res := h.run(t, j, rec)
			rec.check(t)
			want := []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning}
			if res.Status != run.Finished || res.HasChanges || !slices.Equal(phaseNames(res), want) {
				t.Fatalf("autodeploy=%v: result = %s %q changes=%v phases=%v\n%s",
					autodeploy, res.Status, res.Note, res.HasChanges, phaseNames(res), rec.allLogs())
			}
			if !strings.Contains(rec.log(run.PhasePlanning), "No changes.") {
				t.Errorf("the PLANNING log lacks terraform's verdict:\n%s", rec.log(run.PhasePlanning))
			}
		}
	})
}

func TestTaskLogsItsCommandsOutput(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig, "terraform.tfstate": appliedState(t)})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Type, j.Autodeploy = run.Task, false
		j.TaskCommand = "echo hi; echo type=$GANTRY_RUN_TYPE; terraform state list"
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		want := []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePerforming}
		if res.Status != run.Finished || !slices.Equal(phaseNames(res), want) {
			t.Fatalf("result = %s %q phases=%v\n%s", res.Status, res.Note, phaseNames(res), rec.allLogs())
		}
		if got := rec.log(run.PhasePerforming); got != "hi\ntype=TASK\nterraform_data.demo\n" {
			t.Errorf("the PERFORMING log = %q", got)
		}

		j.RunID += "x"
		j.TaskCommand = "echo failing; exit 4"
		rec = newRecorder()
		res = h.run(t, j, rec)
		rec.check(t)
		if p, _ := res.Phase(run.PhasePerforming); res.Status != run.Failed || p.ExitCode != 4 || !strings.Contains(res.Note, "exited with code 4") {
			t.Errorf("failing task: %s %q, PERFORMING exit %d", res.Status, res.Note, p.ExitCode)
		}
	})
}

// appliedState returns the state file of demoConfig once applied, made by
// the real terraform.
func appliedState(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(demoConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-input=false"}, {"apply", "-input=false", "-auto-approve"}} {
		cmd := exec.Command("terraform", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("terraform %v: %v\n%s", args, err, out)
		}
	}
	state, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	return string(state)
}

func TestChecksOutExactlyTheRunsCommit(t *testing.T) {
	repo, first := newRepo(t, map[string]string{"main.tf": demoConfig})
	repo.commit(map[string]string{"main.tf": "resource {"}) // the branch moved on, broken
	h := newHarness(t, nil)
	j := job(repo, first)
	j.Type = run.Proposed
	j.Hooks.BeforeInit = []string{"git rev-parse HEAD", "git symbolic-ref -q HEAD || echo detached"}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	if res.Status != run.Finished {
		t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	if got := rec.log(run.PhaseInitializing); !strings.HasPrefix(got, first+"\ndetached\n") {
		t.Errorf("the INITIALIZING log = %q, want the commit %s, detached", got, first)
	}

	j.RunID += "x"
	j.Commit = strings.Repeat("ab", 20) // no such commit
	rec = newRecorder()
	res = h.run(t, j, rec)
	rec.check(t)
	if p, _ := res.Phase(run.PhasePreparing); res.Status != run.Failed || !strings.Contains(res.Note, "git checkout exited with code") || p.ExitCode == 0 {
		t.Errorf("unknown commit: %s %q (exit %d)\n%s", res.Status, res.Note, p.ExitCode, rec.allLogs())
	}
}

// TestClonesOverHTTP checks a repository out over Git's smart HTTP
// protocol, through the repository cache and, with the cache off, with a
// clone.
func TestClonesOverHTTP(t *testing.T) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	srv := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo.dir), "GIT_HTTP_EXPORT_ALL=1"},
	})
	defer srv.Close()
	plainURL := srv.URL + "/" + filepath.Base(repo.dir)
	for name, c := range map[string]struct {
		cacheDir string
		want     string
	}{
		"cached": {t.TempDir(), "--no-write-fetch-head -- " + plainURL + " " + commit},
		"cloned": {"", "+ git clone --no-checkout --quiet -- " + plainURL},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(cfg *executor.Config) { cfg.RepoCacheDir = c.cacheDir })
			j := job(repo, commit)
			j.Type = run.Proposed
			// Credentials in the URL (the server asks for none) stay out of the logs.
			j.RepositoryURL = strings.Replace(plainURL, "http://", "http://gantry:url-password-31@", 1)
			j.Debug = true
			j.Hooks.BeforeInit = []string{"git remote get-url origin"}
			rec := newRecorder()
			res := h.run(t, j, rec)
			rec.check(t)
			if res.Status != run.Finished || !res.HasChanges {
				t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
			}
			prep := rec.log(run.PhasePreparing)
			if !strings.Contains(prep, "Checking out "+plainURL+" at "+commit) || !strings.Contains(prep, c.want) {
				t.Errorf("the PREPARING log = %q", prep)
			}
			if strings.Contains(rec.allLogs(), "url-password-31") {
				t.Errorf("the URL's password is in the logs:\n%s", rec.allLogs())
			}
			if c.cacheDir != "" && !strings.Contains(rec.log(run.PhaseInitializing), plainURL) {
				t.Errorf("the checkout's origin is not the repository's URL:\n%s", rec.log(run.PhaseInitializing))
			}
		})
	}
}

func TestEnvironmentFollowsScopes(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Env = []executor.Variable{
			{Name: "SCOPE", Value: "all"},
			{Name: "SCOPE", Value: "read", Scope: stack.ScopeReadOnly},
			{Name: "ONLY_WRITE", Value: "w", Scope: stack.ScopeWriteOnly},
			{Name: "OVERRIDDEN", Value: "stack"},
		}
		j.Whitelist = []executor.Variable{
			{Name: "WL", Value: "wl-read", Scope: stack.ScopeReadOnly},
			{Name: "WL", Value: "wl-write", Scope: stack.ScopeWriteOnly},
			{Name: "OVERRIDDEN", Value: "launcher"},
		}
		j.PhaseEnv = func(_ context.Context, p run.Phase) ([]executor.Variable, error) {
			return []executor.Variable{{Name: "PHASE_VAR", Value: "for-" + string(p)}}, nil
		}
		show := `echo "scope=$SCOPE only_write=${ONLY_WRITE:-unset} wl=${WL:-unset} overridden=$OVERRIDDEN phase=$PHASE_VAR"`
		j.Hooks = stack.Hooks{BeforeInit: []string{show}, BeforePlan: []string{show}, BeforeApply: []string{show}}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Finished {
			t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
		}
		for phase, want := range map[run.Phase]string{
			run.PhaseInitializing: "scope=read only_write=unset wl=wl-read overridden=stack phase=for-INITIALIZING\n",
			run.PhasePlanning:     "scope=read only_write=unset wl=wl-read overridden=stack phase=for-PLANNING\n",
			run.PhaseApplying:     "scope=all only_write=w wl=wl-write overridden=stack phase=for-APPLYING\n",
		} {
			if got := rec.log(phase); !strings.HasPrefix(got, want) {
				t.Errorf("%s log starts %q, want %q", phase, got, want)
			}
		}
	})
}

// assertEmptyDir fails if dir holds anything: a run's workspace must be gone.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was left in the work directory", e.Name())
	}
}

func TestManagedStateRefusesTheCodesOwnBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		repo, commit := newRepo(t, map[string]string{
			"main.tf":    demoConfig,
			"backend.tf": "terraform {\n  backend \"s3\" {\n    bucket = \"theirs\"\n  }\n}\n",
		})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.BackendOverride = []byte("terraform {\n  backend \"local\" {}\n}\n")
		j.Debug = true // so that an init that ran would show as "+ terraform init"
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Failed {
			t.Fatalf("result = %s %q: a run whose code declares its own backend must fail", res.Status, res.Note)
		}
		log := rec.log(run.PhaseInitializing)
		if !strings.Contains(log, "backend.tf") || !strings.Contains(log, "remove") || strings.Contains(log, "+ terraform init") {
			t.Fatalf("INITIALIZING log does not name backend.tf and say to remove the block (or init ran):\n%s", log)
		}
	})
}
