package statebackend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/state"
)

// What the current state version holds, read from its file: its outputs,
// and how many managed resources it keeps (what deleting the stack would
// leave unmanaged). Neither read is a download: nothing is recorded.

// Output is one output of a state file.
type Output struct {
	Name      string
	Value     json.RawMessage // as the state file has it
	Type      json.RawMessage // Terraform's type, e.g. "string" or ["list","number"]
	Sensitive bool
}

// stateContents is the part of a Terraform state file (format 4) these
// reads look at.
type stateContents struct {
	Outputs map[string]struct {
		Value     json.RawMessage `json:"value"`
		Type      json.RawMessage `json:"type"`
		Sensitive bool            `json:"sensitive"`
	} `json:"outputs"`
	Resources []struct {
		Mode      string            `json:"mode"`
		Instances []json.RawMessage `json:"instances"`
	} `json:"resources"`
}

func parseContents(data []byte) (stateContents, error) {
	var c stateContents
	if err := json.Unmarshal(data, &c); err != nil {
		return stateContents{}, &InvalidStateError{Problem: fmt.Sprintf("outputs and resources: %v", err)}
	}
	return c, nil
}

// outputs lists the outputs by name.
func (c stateContents) outputs() []Output {
	out := make([]Output, 0, len(c.Outputs))
	for name, o := range c.Outputs {
		out = append(out, Output{Name: name, Value: o.Value, Type: o.Type, Sensitive: o.Sensitive})
	}
	slices.SortFunc(out, func(a, b Output) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// managedResources counts the instances of managed resources (data sources
// manage nothing).
func (c stateContents) managedResources() int {
	n := 0
	for _, r := range c.Resources {
		if r.Mode == "managed" {
			n += len(r.Instances)
		}
	}
	return n
}

// current reads and parses the current version of the stack's state; ok is
// false when there is none (never written, or deleted).
func (s *Service) current(ctx context.Context, stackID string) (state.Version, stateContents, bool, error) {
	if err := ids.Stack.Validate("stack_id", stackID); err != nil {
		return state.Version{}, stateContents{}, false, err
	}
	st, err := s.load(ctx, stackID)
	if err != nil {
		return state.Version{}, stateContents{}, false, err
	}
	v, ok := st.Current()
	if !ok {
		return state.Version{}, stateContents{}, false, nil
	}
	data, err := s.readVersion(ctx, v)
	if err != nil {
		return state.Version{}, stateContents{}, false, err
	}
	c, err := parseContents(data)
	if err != nil {
		return state.Version{}, stateContents{}, false, fmt.Errorf("stack %s: state version %d: %w", stackID, v.Version, err)
	}
	return v, c, true, nil
}

// Outputs returns the outputs of the stack's current state version and
// that version; none, and a zero version, when the stack has no state.
// Sensitive values are returned as they are: hiding them is the caller's
// decision.
func (s *Service) Outputs(ctx context.Context, stackID string) (state.Version, []Output, error) {
	v, c, ok, err := s.current(ctx, stackID)
	if err != nil || !ok {
		return state.Version{}, []Output{}, err
	}
	return v, c.outputs(), nil
}

// ManagedResources counts the managed resource instances the stack's
// current state version keeps; 0 when it has no state.
func (s *Service) ManagedResources(ctx context.Context, stackID string) (int, error) {
	_, c, ok, err := s.current(ctx, stackID)
	if err != nil || !ok {
		return 0, err
	}
	return c.managedResources(), nil
}
