package executor_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// withModule adds a local module to demoConfig: `init` installs it under
// .terraform, which the apply then needs.
const withModule = demoConfig + `
module "child" {
  source = "./child"
}
`

const childModule = `
resource "terraform_data" "inner" {
  input = "from the module"
}
`

// planUnconfirmed runs a TRACKED run without autodeploy to UNCONFIRMED and
// returns its job, with a read-only variable that only the plan sees.
func planUnconfirmed(t *testing.T, h *harness) executor.Job {
	t.Helper()
	repo, commit := newRepo(t, map[string]string{"main.tf": withModule, "child/main.tf": childModule})
	j := job(repo, commit)
	j.Autodeploy = false
	j.Env = []executor.Variable{{Name: "TF_VAR_message", Value: "planned", Scope: stack.ScopeReadOnly}}
	j.Hooks = stack.Hooks{
		AfterRun:    []string{"echo after-run-hook"},
		BeforeApply: []string{`echo "message at apply=${TF_VAR_message:-unset}"`},
		AfterApply:  []string{`echo "output=$(terraform output -raw message)"`, "terraform state list"},
	}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	want := []run.Phase{run.PhasePreparing, run.PhaseInitializing, run.PhasePlanning}
	if res.Status != run.Unconfirmed || !res.HasChanges || !slices.Equal(phaseNames(res), want) {
		t.Fatalf("result = %s %q changes=%v phases=%v\n%s", res.Status, res.Note, res.HasChanges, phaseNames(res), rec.allLogs())
	}
	planLog := rec.log(run.PhasePlanning)
	if !strings.Contains(planLog, "Saved the workspace for the apply, encrypted to the worker pool's key") {
		t.Errorf("the PLANNING log does not say the workspace was saved:\n%s", planLog)
	}
	if strings.Contains(planLog, "after-run-hook") {
		t.Error("after_run ran although the run is not over")
	}
	assertEmptyDir(t, h.cfg.WorkDir)
	return j
}

func TestConfirmedRunAppliesTheSavedPlanOnAnotherWorker(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		planner := newHarnessFor(t, kind, nil)
		j := planUnconfirmed(t, planner)

		applier := newHarnessOn(t, kind, planner.bucket, nil) // another worker of the pool, another directory
		j.Confirmed = true
		rec := newRecorder()
		res := applier.run(t, j, rec)
		rec.check(t)
		want := []run.Phase{run.PhasePreparingApply, run.PhaseApplying}
		if res.Status != run.Finished || !slices.Equal(phaseNames(res), want) {
			t.Fatalf("result = %s %q phases=%v\n%s", res.Status, res.Note, phaseNames(res), rec.allLogs())
		}
		applyLog := rec.log(run.PhaseApplying)
		for _, s := range []string{
			"message at apply=unset", // read-only variables stay out of APPLYING…
			"Apply complete! Resources: 2 added",
			"output=planned", // …yet the saved plan, made with it, is what was applied
			"terraform_data.demo\n", "module.child.terraform_data.inner\n", "after-run-hook",
		} {
			if !strings.Contains(applyLog, s) {
				t.Errorf("the APPLYING log lacks %q:\n%s", s, applyLog)
			}
		}
		assertEmptyDir(t, applier.cfg.WorkDir)
	})
}

func TestConfirmedRunRefusesWhatIsNotItsWorkspace(t *testing.T) {
	ctx := context.Background()
	planner := newHarness(t, nil)
	j := planUnconfirmed(t, planner)
	j.Confirmed = true
	saved, err := planner.bucket.ReadAll(ctx, executor.WorkspaceKey(j.RunID))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other := j
	other.RunID = j.RunID + "other"
	if err := planner.bucket.WriteAll(ctx, executor.WorkspaceKey(other.RunID), saved, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		job  executor.Job
		key  any
		want string
	}{
		{"another pool's key", j, otherKey, executor.ErrWrongKey.Error()},
		{"another run's workspace", other, nil, "belongs to run " + j.RunID},
		{"no workspace", func() executor.Job { n := j; n.RunID += "none"; return n }(), nil, "read the saved workspace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessOn(t, processKind, planner.bucket, func(c *executor.Config) {
				if tc.key != nil {
					c.PoolKey = tc.key
				}
			})
			rec := newRecorder()
			res := h.run(t, tc.job, rec)
			rec.check(t)
			p, _ := res.Phase(run.PhasePreparingApply)
			if res.Status != run.Failed || !strings.Contains(res.Note, tc.want) || len(res.Phases) != 1 || p.ExitCode != executor.ExitNoProcess {
				t.Fatalf("result = %s %q phases=%v exit=%d, want FAILED with %q", res.Status, res.Note, phaseNames(res), p.ExitCode, tc.want)
			}
			if !strings.Contains(rec.log(run.PhasePreparingApply), tc.want) {
				t.Errorf("the log does not say why:\n%s", rec.log(run.PhasePreparingApply))
			}
		})
	}
}

func TestSavedWorkspaceIsUnreadableWithoutThePoolKey(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	j := planUnconfirmed(t, h)
	stored, err := h.bucket.ReadAll(ctx, executor.WorkspaceKey(j.RunID))
	if err != nil {
		t.Fatal(err)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]any{"another RSA key": rsaKey, "an ECDSA key": ecKey} {
		dest := filepath.Join(t.TempDir(), "restored")
		err := executor.RestoreWorkspace(ctx, bytes.NewReader(stored), key, dest)
		if !errors.Is(err, executor.ErrWrongKey) {
			t.Errorf("%s: restore = %v, want ErrWrongKey", name, err)
		}
		if entries, _ := os.ReadDir(dest); len(entries) > 0 {
			t.Errorf("%s: restoring wrote %d entries", name, len(entries))
		}
	}

	// With the pool's key, the plaintext is the workspace: a gzip of a tar
	// holding the checkout, the plan and the manifest.
	plain, err := executor.OpenSealed(bytes.NewReader(stored), poolKey())
	if err != nil {
		t.Fatal(err)
	}
	compressed, err := io.ReadAll(plain)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"source/main.tf", `resource "terraform_data" "demo"`, "gantry.tfplan", j.RunID} {
		if !bytes.Contains(tarball, []byte(s)) {
			t.Errorf("the workspace archive lacks %q", s)
		}
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("the stored object contains %q", s)
		}
	}
	// No piece of the plaintext, compressed or not, shows in the stored object.
	for _, plaintext := range [][]byte{compressed, tarball} {
		for i := 0; i+16 <= len(plaintext); i += 16 {
			if window := plaintext[i : i+16]; bytes.Count(plaintext, window) == 1 && bytes.Contains(stored, window) {
				t.Fatalf("the stored object contains plaintext bytes %x (offset %d)", window, i)
			}
		}
	}

	dest := filepath.Join(t.TempDir(), "restored")
	if err := executor.RestoreWorkspace(ctx, bytes.NewReader(stored), poolKey(), dest); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"source/main.tf", "source/.terraform/modules/modules.json", "gantry.tfplan", "gantry-workspace.json"} {
		if _, err := os.Lstat(filepath.Join(dest, name)); err != nil {
			t.Errorf("the restored workspace lacks %s: %v", name, err)
		}
	}
}
