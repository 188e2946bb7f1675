package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gantryhq/gantry/domain/run"
)

// planJSONFile is where `<tool> show -json` writes the saved plan's JSON in
// the workspace, next to the plan; it is read and deleted at once.
const planJSONFile = "gantry.tfplan.json"

// readPlan reads what a plan with changes changes from `<tool> show -json`
// (for a drift-detection run, or when the tool printed no "Plan:" line to
// read the summary from)
// of the saved plan, run in the run's sandbox like the plan itself (the
// tool starts the providers to read their schemas: they must run where the
// run's code runs, never on the worker's host): the counts of the summary,
// and for a drift-detection run the changed resources' addresses. The JSON
// goes to a file, not to the log: it is the whole plan, sensitive values
// included. A plan that cannot be read leaves the result without a summary
// (the plan itself stands); the log says why.
func (x *execution) readPlan(ctx context.Context, ph *phase) {
	out := filepath.Join(x.ws.work, planJSONFile)
	defer os.Remove(out)
	c := x.toolCommand(ph, "show", "-json", x.sb.path(x.ws.planFile))
	c.name, c.prog = string(x.job.Tool)+" show -json", "sh"
	c.args = []string{"-c", `exec "$0" show -json "$1" > "$2"`, string(x.job.Tool), x.sb.path(x.ws.planFile), x.sb.path(out)}
	code, err := x.runCommand(ctx, ph.log, x.sb, c)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(out)
	}
	var plan readablePlan
	if err == nil {
		plan, err = parsePlan(data)
	}
	if err != nil {
		ph.log.printf("Could not read what the plan changes: %v", err)
		return
	}
	summary := plan.summary()
	ph.summary = &summary
	if x.job.Drift {
		ph.changed = plan.changedAddresses()
		ph.log.printf("Drift detected in %d resources", len(ph.changed))
	}
}

// planLine matches the line terraform and OpenTofu end a plan with changes
// with, colour codes removed: "Plan: [N to import, ]A to add, C to change,
// D to destroy[, F to forget]." Its counts are those of summary below.
var (
	planLine   = regexp.MustCompile(`^Plan: (?:\d+ to import, )?(\d+) to add, (\d+) to change, (\d+) to destroy\b`)
	colourCode = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

// planLineSummary reads a plan's summary from the tool's "Plan:" line, so
// that a plan needs no second process (` + "`show -json`" + `) to be summarised.
func planLineSummary(line string) (run.PlanSummary, bool) {
	m := planLine.FindStringSubmatch(strings.TrimSpace(colourCode.ReplaceAllString(line, "")))
	if m == nil {
		return run.PlanSummary{}, false
	}
	var n [3]int
	for i := range n {
		v, err := strconv.Atoi(m[i+1])
		if err != nil {
			return run.PlanSummary{}, false
		}
		n[i] = v
	}
	return run.PlanSummary{Add: n[0], Change: n[1], Destroy: n[2]}, true
}

// readablePlan is what Gantry reads of a plan in terraform's (and
// OpenTofu's) JSON representation.
type readablePlan struct {
	FormatVersion   string `json:"format_version"`
	ResourceChanges []struct {
		Address string `json:"address"`
		Change  struct {
			Actions []string `json:"actions"`
		} `json:"change"`
	} `json:"resource_changes"`
}

func parsePlan(data []byte) (readablePlan, error) {
	var p readablePlan
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("read the JSON plan: %w", err)
	}
	if p.FormatVersion == "" {
		return p, errors.New("read the JSON plan: no format_version: not a plan")
	}
	return p, nil
}

// summary counts the resource changes: each "create" adds, "update"
// changes and "delete" destroys, so a replacement (delete and create, in
// either order) counts as one addition and one destruction, as terraform's
// own "Plan:" line does; "read", "no-op" and "forget" count nowhere.
func (p readablePlan) summary() run.PlanSummary {
	var s run.PlanSummary
	for _, rc := range p.ResourceChanges {
		for _, a := range rc.Change.Actions {
			switch a {
			case "create":
				s.Add++
			case "update":
				s.Change++
			case "delete":
				s.Destroy++
			}
		}
	}
	return s
}

// changedAddresses returns, sorted, the addresses of the resource changes
// whose actions are more than "no-op" or "read".
func (p readablePlan) changedAddresses() []string {
	out := []string{}
	for _, rc := range p.ResourceChanges {
		if slices.ContainsFunc(rc.Change.Actions, func(a string) bool { return a != "no-op" && a != "read" }) {
			out = append(out, rc.Address)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
