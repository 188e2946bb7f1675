package executor

import (
	"slices"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
)

func TestPlanSummary(t *testing.T) {
	change := func(actions ...string) string {
		s := `{"address":"x","mode":"managed","change":{"actions":[`
		for i, a := range actions {
			if i > 0 {
				s += ","
			}
			s += `"` + a + `"`
		}
		return s + `]}}`
	}
	plan := func(changes ...string) string {
		s := `{"format_version":"1.2","resource_changes":[`
		for i, c := range changes {
			if i > 0 {
				s += ","
			}
			s += c
		}
		return s + `]}`
	}
	tests := []struct {
		name    string
		json    string
		want    run.PlanSummary
		wantErr bool
	}{
		{"nothing", `{"format_version":"1.2"}`, run.PlanSummary{}, false},
		{"create", plan(change("create")), run.PlanSummary{Add: 1}, false},
		{"update", plan(change("update")), run.PlanSummary{Change: 1}, false},
		{"delete", plan(change("delete")), run.PlanSummary{Destroy: 1}, false},
		{"replace, destroy first", plan(change("delete", "create")), run.PlanSummary{Add: 1, Destroy: 1}, false},
		{"replace, create first", plan(change("create", "delete")), run.PlanSummary{Add: 1, Destroy: 1}, false},
		{"reads, no-ops and forgets count nowhere", plan(change("read"), change("no-op"), change("forget")), run.PlanSummary{}, false},
		{"a mix", plan(change("create"), change("create"), change("update"), change("delete", "create"), change("no-op")),
			run.PlanSummary{Add: 3, Change: 1, Destroy: 1}, false},
		{"not JSON", `Plan: 1 to add`, run.PlanSummary{}, true},
		{"JSON that is not a plan", `{"resource_changes":[]}`, run.PlanSummary{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parsePlan([]byte(tt.json))
			if got := p.summary(); (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("summary = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPlanChangedAddresses(t *testing.T) {
	p, err := parsePlan([]byte(`{"format_version":"1.2","resource_changes":[
		{"address":"b.x","change":{"actions":["update"]}},
		{"address":"a.y","change":{"actions":["delete","create"]}},
		{"address":"c.z","change":{"actions":["no-op"]}},
		{"address":"d.r","change":{"actions":["read"]}},
		{"address":"b.x","change":{"actions":["update"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.changedAddresses(); !slices.Equal(got, []string{"a.y", "b.x"}) {
		t.Errorf("changedAddresses = %q", got)
	}
}

func TestPlanLineSummary(t *testing.T) {
	tests := []struct {
		line string
		want run.PlanSummary
		ok   bool
	}{
		{"Plan: 2 to add, 0 to change, 1 to destroy.", run.PlanSummary{Add: 2, Destroy: 1}, true},
		{"\x1b[1mPlan:\x1b[0m 1 to add, 3 to change, 0 to destroy.", run.PlanSummary{Add: 1, Change: 3}, true},
		{"Plan: 1 to import, 0 to add, 1 to change, 0 to destroy.", run.PlanSummary{Change: 1}, true},
		{"Plan: 0 to add, 0 to change, 0 to destroy, 2 to forget.", run.PlanSummary{}, true},
		{"  Plan: 4 to add, 0 to change, 0 to destroy.\r", run.PlanSummary{Add: 4}, true},
		{"No changes. Your infrastructure matches the configuration.", run.PlanSummary{}, false},
		{"echo Plan: 1 to add, 0 to change, 0 to destroy.", run.PlanSummary{}, false},
		{"Plan: 99999999999999999999 to add, 0 to change, 0 to destroy.", run.PlanSummary{}, false},
	}
	for _, tt := range tests {
		got, ok := planLineSummary(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("planLineSummary(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}
