package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/seal"
)

// outputsFile is where `<tool> output -json` writes, in the run's TMPDIR:
// its standard output alone, apart from the log, since it holds the
// sensitive values in the clear. It is removed once read.
const outputsFile = "gantry-outputs.json"

// readOutputs reads the run's outputs with `<tool> output -json` after a
// successful apply or task, for the phase's result. A sensitive output's
// value is sealed to Job.OutputsKey when the launcher uploads sensitive
// outputs, and left out otherwise; either way it is masked in the logs from
// then on. Outputs that cannot be read, or exceed run.MaxOutputs or
// run.MaxOutputsSize, are not recorded; the log says why, and the run goes
// on: its apply already happened.
func (x *execution) readOutputs(ctx context.Context, ph *phase) {
	if x.job.ReadState != nil {
		outputs, err := x.stateOutputs(ctx, ph)
		if err == nil {
			ph.outputs = outputs
			return
		}
		if ctx.Err() != nil {
			return
		}
		x.log.Info("the run's outputs are read by the tool", "reason", err)
	}
	file := filepath.Join(x.ws.tmp, outputsFile)
	defer os.Remove(file)
	tool := string(x.job.Tool)
	c := command{
		name:    tool + " output",
		prog:    "sh",
		args:    []string{"-c", `exec "$0" output -json >"$1"`, tool, x.sb.path(file)},
		display: shellJoin(tool, "output", "-json"),
		dir:     x.ws.project, env: ph.env,
	}
	code, err := x.runCommand(ctx, ph.log, x.sb, c)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s exited with code %d", c.name, code)
	}
	if err != nil {
		ph.log.printf("The run's outputs are not recorded: %v", err)
		return
	}
	data, err := os.ReadFile(file)
	if err != nil {
		ph.log.printf("The run's outputs are not recorded: %v", err)
		return
	}
	outputs, err := x.outputs(data)
	clear(data)
	if err != nil {
		ph.log.printf("The run's outputs are not recorded: %v", err)
		return
	}
	ph.outputs = outputs
}

// stateOutputs reads the outputs from the stored state (Job.ReadState),
// the same names, types, values and sensitivity `<tool> output -json`
// prints of it, without starting the tool. An error means the tool must
// read them; limits exceeded are reported in the log, as for the tool.
func (x *execution) stateOutputs(ctx context.Context, ph *phase) ([]run.Output, error) {
	data, err := x.job.ReadState(ctx, ph.name)
	if err != nil {
		return nil, fmt.Errorf("read the stored state: %w", err)
	}
	defer clear(data)
	if x.job.Debug {
		ph.log.printf("Reading the run's outputs from the stored state")
	}
	if len(data) == 0 {
		return nil, nil // no state: no outputs
	}
	var state struct {
		Version          int             `json:"version"`
		TerraformVersion string          `json:"terraform_version"`
		Outputs          json.RawMessage `json:"outputs"`
	}
	if err := json.Unmarshal(data, &state); err != nil || state.Version != 4 || state.TerraformVersion == "" {
		return nil, errors.New("the stored state is not a version 4 JSON state")
	}
	if len(state.Outputs) == 0 || string(state.Outputs) == "null" {
		return nil, nil
	}
	outputs, err := x.outputs(state.Outputs)
	if err != nil {
		ph.log.printf("The run's outputs are not recorded: %v", err)
		return nil, nil
	}
	return outputs, nil
}

// outputs turns what `<tool> output -json` printed into the run's outputs,
// sorted by name.
func (x *execution) outputs(data []byte) ([]run.Output, error) {
	var printed map[string]struct {
		Sensitive bool            `json:"sensitive"`
		Type      json.RawMessage `json:"type"`
		Value     json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &printed); err != nil {
		return nil, fmt.Errorf("%s output -json: %w", x.job.Tool, err)
	}
	if len(printed) > run.MaxOutputs {
		return nil, fmt.Errorf("%d outputs, more than %d", len(printed), run.MaxOutputs)
	}
	var outputs []run.Output
	size := 0
	for name, p := range printed {
		o := run.Output{Name: name, Sensitive: p.Sensitive, Type: compactJSON(p.Type)}
		if !p.Sensitive {
			o.Value = compactJSON(p.Value)
		} else {
			var s string
			if json.Unmarshal(p.Value, &s) == nil {
				x.mask.add(s)
			}
			if x.job.OutputsKey != nil {
				sealed, err := seal.Bytes(x.job.OutputsKey, compactJSON(p.Value))
				if err != nil {
					return nil, fmt.Errorf("seal the sensitive output %s: %w", name, err)
				}
				o.Sealed = sealed
			}
		}
		size += len(o.Name) + len(o.Type) + len(o.Value) + len(o.Sealed)
		outputs = append(outputs, o)
	}
	if size > run.MaxOutputsSize {
		return nil, fmt.Errorf("%d bytes of outputs, more than %d", size, run.MaxOutputsSize)
	}
	slices.SortFunc(outputs, func(a, b run.Output) int { return strings.Compare(a.Name, b.Name) })
	return outputs, nil
}

// compactJSON is v without the indentation `<tool> output -json` prints
// (v as it is if it is not JSON: the domain refuses it).
func compactJSON(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if len(v) == 0 || json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
