package run

import "fmt"

// PlanSummary counts the resource changes of a plan the way terraform's
// "Plan: N to add, M to change, K to destroy" line does: a replacement
// counts once as an addition and once as a destruction; reads, no-ops and
// forgotten resources count nowhere.
type PlanSummary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

// String renders the summary as terraform prints it.
func (p PlanSummary) String() string {
	return fmt.Sprintf("%d to add, %d to change, %d to destroy", p.Add, p.Change, p.Destroy)
}

// IsZero reports whether the plan changes no resource.
func (p PlanSummary) IsZero() bool { return p == PlanSummary{} }
