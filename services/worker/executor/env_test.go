package executor_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
)

func TestWritePhases(t *testing.T) {
	for _, tc := range []struct {
		typ   run.Type
		phase run.Phase
		write bool
	}{
		{run.Tracked, run.PhaseInitializing, false},
		{run.Tracked, run.PhasePlanning, false},
		{run.Tracked, run.PhaseApplying, true},
		{run.Proposed, run.PhaseInitializing, false},
		{run.Proposed, run.PhasePlanning, false},
		{run.Task, run.PhaseInitializing, true},
		{run.Task, run.PhasePerforming, true},
	} {
		if got := executor.WritePhase(tc.typ, tc.phase); got != tc.write {
			t.Errorf("WritePhase(%s, %s) = %v", tc.typ, tc.phase, got)
		}
	}
}

func TestWhitelistVariables(t *testing.T) {
	launcher := map[string]string{"PROXY": "http://proxy", "AWS_PROFILE": "ro-profile", "DEPLOY_KEY": "k", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := launcher[k]; return v, ok }
	got, err := executor.WhitelistVariables(" PROXY, ro_AWS_PROFILE,wo_DEPLOY_KEY,,MISSING,EMPTY ", lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []executor.Variable{
		{Name: "PROXY", Value: "http://proxy", Scope: stack.ScopeAll},
		{Name: "AWS_PROFILE", Value: "ro-profile", Scope: stack.ScopeReadOnly},
		{Name: "DEPLOY_KEY", Value: "k", Scope: stack.ScopeWriteOnly},
		{Name: "EMPTY", Value: "", Scope: stack.ScopeAll},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := executor.WhitelistVariables("", lookup); err != nil || len(got) != 0 {
		t.Errorf("empty list: %v, %v", got, err)
	}
	_, err = executor.WhitelistVariables("OK,ro_,1BAD,A=B,PROXY,PROXY", lookup)
	for _, s := range []string{`"ro_"`, `"1BAD"`, `"A=B"`, `"PROXY" repeats`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not name %s", err, s)
		}
	}
}

func TestVariablesDoNotPrintTheirValues(t *testing.T) {
	v := executor.Variable{Name: "DB_PASSWORD", Value: "hunter2", Secret: true, Scope: stack.ScopeWriteOnly}
	if s := v.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "DB_PASSWORD") {
		t.Errorf("String() = %q", s)
	}
}
