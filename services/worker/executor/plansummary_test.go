package executor_test

import (
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
)

// replaceAndAddConfig, planned against the applied demo configuration,
// replaces terraform_data.demo (a new triggers_replace) and creates
// terraform_data.added.
const replaceAndAddConfig = `
resource "terraform_data" "demo" {
  input            = "hello"
  triggers_replace = "again"
}

resource "terraform_data" "added" {}
`

func TestPlanningReportsThePlansSummary(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name  string
		files map[string]string
		want  run.PlanSummary
		line  string // what terraform itself prints (after its colour codes)
	}{
		{"a replacement and a creation", map[string]string{"main.tf": replaceAndAddConfig, "terraform.tfstate": appliedState(t)},
			run.PlanSummary{Add: 2, Destroy: 1}, "2 to add, 0 to change, 1 to destroy."},
		{"no changes", map[string]string{"main.tf": noChangesConfig}, run.PlanSummary{}, "No changes."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, commit := newRepo(t, tt.files)
			j := job(repo, commit)
			j.Type, j.Autodeploy = run.Proposed, false
			j.Debug = true // the log names each process the run starts
			rec := newRecorder()
			res := h.run(t, j, rec)
			rec.check(t)
			if res.Status != run.Finished {
				t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
			}
			planning, ok := res.Phase(run.PhasePlanning)
			if !ok || planning.Plan == nil || *planning.Plan != tt.want {
				t.Fatalf("PLANNING reported plan %+v, want %+v\n%s", planning.Plan, tt.want, rec.log(run.PhasePlanning))
			}
			if !strings.Contains(rec.log(run.PhasePlanning), tt.line) {
				t.Errorf("terraform did not print %q:\n%s", tt.line, rec.log(run.PhasePlanning))
			}
			if strings.Contains(rec.log(run.PhasePlanning), "show -json") {
				t.Errorf("the summary took a second process; terraform's own Plan: line says it:\n%s", rec.log(run.PhasePlanning))
			}
			if strings.Contains(rec.log(run.PhasePlanning), "format_version") {
				t.Error("the JSON plan went into the run's log")
			}
			for _, p := range res.Phases {
				if p.Phase != run.PhasePlanning && p.Plan != nil {
					t.Errorf("%s reported a plan summary", p.Phase)
				}
			}
		})
	}
}

// A plan that fails has no summary.
func TestFailedPlanHasNoSummary(t *testing.T) {
	repo, commit := newRepo(t, map[string]string{"main.tf": `resource "terraform_data" "x" { input = var.undeclared }`})
	h := newHarness(t, nil)
	j := job(repo, commit)
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	planning, ok := res.Phase(run.PhasePlanning)
	if res.Status != run.Failed || !ok || planning.Plan != nil {
		t.Fatalf("result %s, PLANNING ran %v with plan %+v", res.Status, ok, planning.Plan)
	}
}
