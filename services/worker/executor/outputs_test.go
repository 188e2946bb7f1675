package executor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/platform/seal"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// outputsConfig has outputs of several types, two of them sensitive.
const outputsConfig = `
resource "terraform_data" "demo" {
  input = "hello"
}

output "greeting" {
  value = terraform_data.demo.output
}

output "list" {
  value = [1, 2]
}

output "password" {
  value     = "pa55-w0rd-xyz"
  sensitive = true
}

output "pin" {
  value     = 1234
  sensitive = true
}
`

// phaseOutputs returns the outputs of phase p's result.
func phaseOutputs(t *testing.T, res executor.Result, p run.Phase) []run.Output {
	t.Helper()
	ph, ok := res.Phase(p)
	if !ok {
		t.Fatalf("no %s in %v", p, phaseNames(res))
	}
	return ph.Outputs
}

// TestRunOutputs: after a successful apply (or task), the run's outputs
// come with the phase's result: the plain ones with their values, the
// sensitive ones without, or sealed to the outputs key when there is one.
// A sensitive value never reaches the log, even when a hook prints it.
func TestRunOutputs(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h := newHarnessFor(t, kind, nil)
		repo, commit := newRepo(t, map[string]string{"main.tf": outputsConfig})

		j := job(repo, commit)
		j.OutputsKey = &key.PublicKey
		j.Hooks = stack.Hooks{AfterApply: []string{`echo "leak: $(terraform output -raw password)"`}}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Finished {
			t.Fatalf("%s (%s)\n%s", res.Status, res.Note, rec.allLogs())
		}
		if logs := rec.allLogs(); strings.Contains(logs, "pa55-w0rd-xyz") || !strings.Contains(logs, "leak: ") {
			t.Errorf("the sensitive value reached the log, or the hook did not run:\n%s", logs)
		}
		outs := phaseOutputs(t, res, run.PhaseApplying)
		var names []string
		for _, o := range outs {
			names = append(names, o.Name)
		}
		if strings.Join(names, ",") != "greeting,list,password,pin" {
			t.Fatalf("outputs %v", names)
		}
		if g := outs[0]; g.Sensitive || string(g.Value) != `"hello"` || string(g.Type) != `"string"` || g.Sealed != nil {
			t.Errorf("greeting: %+v", g)
		}
		if l := outs[1]; string(l.Value) != `[1,2]` || string(l.Type) != `["tuple",["number","number"]]` {
			t.Errorf("list: value %s type %s", l.Value, l.Type)
		}
		for i, want := range map[int]string{2: `"pa55-w0rd-xyz"`, 3: `1234`} {
			o := outs[i]
			if !o.Sensitive || o.Value != nil {
				t.Errorf("%s: %+v", o.Name, o)
				continue
			}
			plain, err := seal.Open(key, o.Sealed)
			if err != nil || string(plain) != want {
				t.Errorf("%s opens to %q (%v), want %s", o.Name, plain, err, want)
			}
		}
		for _, p := range res.Phases {
			if p.Phase != run.PhaseApplying && p.Outputs != nil {
				t.Errorf("%s has outputs", p.Phase)
			}
		}

		// Without a key, sensitive outputs are named only; a task's
		// outputs come with PERFORMING.
		task := job(repo, commit)
		task.Type, task.Autodeploy, task.TaskCommand = run.Task, false, "terraform apply -input=false -auto-approve"
		rec = newRecorder()
		res = h.run(t, task, rec)
		if res.Status != run.Finished {
			t.Fatalf("task: %s (%s)\n%s", res.Status, res.Note, rec.allLogs())
		}
		outs = phaseOutputs(t, res, run.PhasePerforming)
		if len(outs) != 4 {
			t.Fatalf("task outputs %+v", outs)
		}
		if p := outs[2]; p.Name != "password" || !p.Sensitive || p.Value != nil || p.Sealed != nil {
			t.Errorf("password without a key: %+v", p)
		}
		if data, _ := json.Marshal(outs); strings.Contains(string(data), "pa55") {
			t.Errorf("the sensitive value is in the outputs: %s", data)
		}
	})
}

// TestRunOutputsFromTheStoredState: with Job.ReadState the outputs are
// read from the state the apply stored (here terraform's own local state
// file), without a `terraform output` process, and are the same as the
// tool reads; a state that cannot be read leaves it to the tool.
func TestRunOutputsFromTheStoredState(t *testing.T) {
	h := newHarness(t, nil)
	repo, commit := newRepo(t, map[string]string{"main.tf": outputsConfig})

	byTool := job(repo, commit)
	rec := newRecorder()
	res := h.run(t, byTool, rec)
	if res.Status != run.Finished {
		t.Fatalf("%s (%s)\n%s", res.Status, res.Note, rec.allLogs())
	}
	want, _ := json.Marshal(phaseOutputs(t, res, run.PhaseApplying))

	for name, c := range map[string]struct {
		read     func(j executor.Job) ([]byte, error)
		fromTool bool
	}{
		"stored state": {read: func(j executor.Job) ([]byte, error) {
			states, err := filepath.Glob(filepath.Join(h.cfg.WorkDir, "gantry-"+j.RunID+"-*", "work", "source", "terraform.tfstate"))
			if err != nil || len(states) != 1 {
				return nil, fmt.Errorf("the state file: %v %v", states, err)
			}
			return os.ReadFile(states[0])
		}},
		"unreadable state": {read: func(executor.Job) ([]byte, error) {
			return os.ReadFile(filepath.Join(t.TempDir(), "no-such-state"))
		}, fromTool: true},
	} {
		t.Run(name, func(t *testing.T) {
			j := job(repo, commit)
			j.Debug = true
			j.ReadState = func(_ context.Context, p run.Phase) ([]byte, error) {
				if p != run.PhaseApplying {
					return nil, fmt.Errorf("read in %s", p)
				}
				return c.read(j)
			}
			rec := newRecorder()
			res := h.run(t, j, rec)
			if res.Status != run.Finished {
				t.Fatalf("%s (%s)\n%s", res.Status, res.Note, rec.allLogs())
			}
			if got, _ := json.Marshal(phaseOutputs(t, res, run.PhaseApplying)); string(got) != string(want) {
				t.Errorf("outputs %s, want %s", got, want)
			}
			applying := rec.log(run.PhaseApplying)
			if byTool := strings.Contains(applying, "+ terraform output -json"); byTool != c.fromTool || strings.Contains(applying, "pa55-w0rd-xyz") {
				t.Errorf("read by the tool: %v, want %v:\n%s", byTool, c.fromTool, applying)
			}
		})
	}
}
