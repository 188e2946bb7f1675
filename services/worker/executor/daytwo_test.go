package executor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// mountedConfig reads a mounted file while planning: the file must be in
// place before init.
const mountedConfig = `
resource "terraform_data" "config" {
  input = file("${path.module}/config/app.txt")
}
`

func TestMountedFilesAreWrittenBeforeInit(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{
		"infra/main.tf":        mountedConfig,
		"infra/config/app.txt": "the repository's own file, which the mounted one replaces",
	})
	h := newHarness(t, nil)
	j := job(repo, commit)
	j.ProjectRoot = "infra"
	j.Files = []executor.MountedFile{
		{Path: "config/app.txt", Content: []byte("mounted content\n")},
		{Path: "deep/er/dir/.netrc", Content: []byte("machine example.com\n")},
	}
	j.Hooks = stack.Hooks{BeforeInit: []string{
		`test "$(cat config/app.txt)" = "mounted content"`,
		`echo "mode=$(stat -c %a config/app.txt) deep=$(stat -c %a deep/er/dir/.netrc)"`,
	}}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	if res.Status != run.Finished {
		t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	prepareLog := rec.log(run.PhasePreparing)
	for _, s := range []string{"Mounted config/app.txt (16 bytes)", "Mounted deep/er/dir/.netrc (20 bytes)"} {
		if !strings.Contains(prepareLog, s) {
			t.Errorf("the PREPARING log lacks %q:\n%s", s, prepareLog)
		}
	}
	if strings.Contains(prepareLog, "mounted content") {
		t.Error("the PREPARING log shows a mounted file's content")
	}
	if !strings.Contains(rec.log(run.PhaseInitializing), "mode=600 deep=600") {
		t.Errorf("the mounted files are not private to the worker's user:\n%s", rec.log(run.PhaseInitializing))
	}
	if !strings.Contains(rec.log(run.PhaseApplying), "Apply complete! Resources: 1 added") {
		t.Errorf("the plan did not read the mounted file:\n%s", rec.allLogs())
	}
	assertEmptyDir(t, h.cfg.WorkDir)
}

func TestMountedFilesMustStayInTheProjectRoot(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarness(t, nil)
	for _, path := range []string{"../outside", "/etc/passwd", "a/../../b", "./not/clean", executor.OverrideFile} {
		j := job(repo, commit)
		j.Files = []executor.MountedFile{{Path: path, Content: []byte("x")}}
		_, err := h.exec.Start(context.Background(), j, newRecorder())
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "files" {
			t.Errorf("a mounted file at %q: %v, want a problem with files", path, err)
		}
	}
}

// A destroy run plans with -destroy and applies in DESTROYING: at once with
// autodeploy, or on another worker once confirmed.
func TestDestroyRunDestroysInDestroying(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "terraform.tfstate")
	config := demoConfig + `
terraform {
  backend "local" {
    path = "` + stateFile + `"
  }
}
`
	repo, commit := newRepo(t, map[string]string{"main.tf": config})
	h := newHarness(t, nil)
	rec := newRecorder()
	if res := h.run(t, job(repo, commit), rec); res.Status != run.Finished {
		t.Fatalf("the first apply: %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}

	// Without autodeploy the destroy plan waits for a confirmation.
	destroy := job(repo, commit)
	destroy.Destroy, destroy.Autodeploy = true, false
	rec = newRecorder()
	res := h.run(t, destroy, rec)
	rec.check(t)
	if res.Status != run.Unconfirmed || !res.HasChanges {
		t.Fatalf("the destroy plan: %s %q changes=%v\n%s", res.Status, res.Note, res.HasChanges, rec.allLogs())
	}
	if planLog := rec.log(run.PhasePlanning); !strings.Contains(planLog, "1 to destroy") {
		t.Errorf("the PLANNING log does not plan the destruction:\n%s", planLog)
	}
	destroy.Confirmed = true
	rec = newRecorder()
	res = newHarnessOn(t, processKind, h.bucket, nil).run(t, destroy, rec)
	rec.check(t)
	want := []run.Phase{run.PhasePreparingApply, run.PhaseDestroying}
	if res.Status != run.Finished || !slices.Equal(phaseNames(res), want) {
		t.Fatalf("the confirmed destroy: %s %q phases=%v\n%s", res.Status, res.Note, phaseNames(res), rec.allLogs())
	}
	if log := rec.log(run.PhaseDestroying); !strings.Contains(log, "Resources: 0 added, 0 changed, 1 destroyed") {
		t.Errorf("the DESTROYING log:\n%s", log)
	}
	state, err := os.ReadFile(stateFile)
	if err != nil || strings.Contains(string(state), `"terraform_data"`) {
		t.Errorf("the state still holds the resource (%v):\n%s", err, state)
	}

	// With autodeploy, PLANNING goes straight on to DESTROYING.
	if res := h.run(t, job(repo, commit), newRecorder()); res.Status != run.Finished {
		t.Fatalf("the second apply: %s %q", res.Status, res.Note)
	}
	auto := job(repo, commit)
	auto.Destroy = true
	rec = newRecorder()
	res = h.run(t, auto, rec)
	rec.check(t)
	want = []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning, run.PhaseDestroying}
	if res.Status != run.Finished || !slices.Equal(phaseNames(res), want) || !slices.Equal(rec.phases(), want) {
		t.Fatalf("the autodeploy destroy: %s %q phases=%v\n%s", res.Status, res.Note, phaseNames(res), rec.allLogs())
	}
	if log := rec.log(run.PhaseDestroying); !strings.Contains(log, "Resources: 0 added, 0 changed, 1 destroyed") {
		t.Errorf("the DESTROYING log:\n%s", log)
	}

	task := job(repo, commit)
	task.Type, task.TaskCommand, task.Autodeploy, task.Destroy = run.Task, "true", false, true
	if _, err := h.exec.Start(context.Background(), task, newRecorder()); err == nil || !strings.Contains(err.Error(), "destroy") {
		t.Errorf("a destroy task: %v, want a problem with destroy", err)
	}
}
