package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/gantryhq/gantry/domain/run"
)

// maxShowStderr bounds what a failed `show -json` says in the worker's log.
const maxShowStderr = 4 << 10

// startPlanSummary starts counting what the saved plan changes, alongside
// what PLANNING still does (after_plan hooks, saving the workspace), and
// sets ph's summary to wait for it. A plan without changes needs no
// process. A summary that cannot be read leaves the result without one
// (the plan itself stands); the worker's log says why.
func (x *execution) startPlanSummary(ctx context.Context, ph *phase, changes bool) {
	if !changes {
		ph.summary = func() *run.PlanSummary { return &run.PlanSummary{} }
		return
	}
	done := make(chan *run.PlanSummary, 1)
	go func() {
		s, err := x.planSummary(ctx, ph)
		if err != nil {
			x.log.Warn("could not summarize the plan", "error", err)
			done <- nil
			return
		}
		done <- &s
	}()
	ph.summary = sync.OnceValue(func() *run.PlanSummary { return <-done })
}

// planSummary counts what the saved plan changes, from `<tool> show -json
// <plan>` run in the project root with the phase's environment. Its output
// is not part of the run's log: it is the whole plan as JSON, and only the
// counts are wanted.
func (x *execution) planSummary(ctx context.Context, ph *phase) (run.PlanSummary, error) {
	c := x.toolCommand(ph, "show", "-json", x.ws.planFile)
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Dir, cmd.Env = c.dir, c.env
	// Like every command of a run, in a process group of its own that
	// nothing outlives (providers the tool starts included).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = pipeDrainTimeout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxShowStderr {
			msg = msg[:maxShowStderr] + "…"
		}
		return run.PlanSummary{}, fmt.Errorf("%s: %w: %s", c.name, err, x.mask.mask(msg))
	}
	return countPlan(out)
}

// countPlan counts the resource changes of a plan in terraform's (and
// OpenTofu's) JSON representation: each "create" adds, "update" changes and
// "delete" destroys, so a replacement (delete and create, in either order)
// counts as one addition and one destruction, as terraform's own "Plan:"
// line does; "read", "no-op" and "forget" count nowhere.
func countPlan(data []byte) (run.PlanSummary, error) {
	var plan struct {
		FormatVersion   string `json:"format_version"`
		ResourceChanges []struct {
			Change struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		return run.PlanSummary{}, fmt.Errorf("read the JSON plan: %w", err)
	}
	if plan.FormatVersion == "" {
		return run.PlanSummary{}, errors.New("read the JSON plan: no format_version: not a plan")
	}
	var s run.PlanSummary
	for _, rc := range plan.ResourceChanges {
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
	return s, nil
}
