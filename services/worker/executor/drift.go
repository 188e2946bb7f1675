package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"time"
)

// driftShowTimeout bounds `<tool> show -json` of a drift run's plan.
const driftShowTimeout = 2 * time.Minute

// driftResources returns the addresses of the resources the saved plan
// changes, for a drift-detection run (nil for any other run): what its
// DriftDetected records. The plan's JSON is read from `<tool> show -json`
// and not logged (it may hold sensitive values); when it cannot be read,
// the phase log says so and the drift is recorded without addresses.
func (x *execution) driftResources(ctx context.Context, ph *phase) []string {
	if !x.job.Drift {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, driftShowTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.tools.tool, "show", "-json", x.ws.planFile)
	cmd.Dir, cmd.Env = x.ws.project, ph.env
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		ph.log.printf("Drift: could not read the plan's changed resources: %v", err)
		return nil
	}
	addrs, err := changedAddresses(stdout.Bytes())
	if err != nil {
		ph.log.printf("Drift: could not read the plan's changed resources: %v", err)
		return nil
	}
	ph.log.printf("Drift detected in %d resources", len(addrs))
	return addrs
}

// changedAddresses returns, sorted, the addresses of the resource changes
// of a plan's JSON whose actions are more than "no-op" or "read".
func changedAddresses(planJSON []byte) ([]string, error) {
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(planJSON, &plan); err != nil {
		return nil, err
	}
	out := []string{}
	for _, rc := range plan.ResourceChanges {
		if slices.ContainsFunc(rc.Change.Actions, func(a string) bool { return a != "no-op" && a != "read" }) {
			out = append(out, rc.Address)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
