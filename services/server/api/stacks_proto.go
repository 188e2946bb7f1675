package api

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// Conversions between the stack API messages and the domain and read
// models.

func toolFromProto(t gantryv1.Tool) (stack.Tool, error) {
	switch t {
	case gantryv1.Tool_TOOL_UNSPECIFIED:
		return "", nil
	case gantryv1.Tool_TOOL_TERRAFORM:
		return stack.Terraform, nil
	case gantryv1.Tool_TOOL_TOFU:
		return stack.OpenTofu, nil
	}
	return "", &invalidArgumentError{field: "tool", reason: fmt.Sprintf("unknown tool %d: use TOOL_TERRAFORM or TOOL_TOFU", t)}
}

func toolToProto(t stack.Tool) gantryv1.Tool {
	switch t {
	case stack.Terraform:
		return gantryv1.Tool_TOOL_TERRAFORM
	case stack.OpenTofu:
		return gantryv1.Tool_TOOL_TOFU
	}
	return gantryv1.Tool_TOOL_UNSPECIFIED
}

func scopeToProto(s stack.Scope) gantryv1.EnvScope {
	switch s {
	case stack.ScopeAll:
		return gantryv1.EnvScope_ENV_SCOPE_ALL
	case stack.ScopeReadOnly:
		return gantryv1.EnvScope_ENV_SCOPE_READ_ONLY
	case stack.ScopeWriteOnly:
		return gantryv1.EnvScope_ENV_SCOPE_WRITE_ONLY
	}
	return gantryv1.EnvScope_ENV_SCOPE_UNSPECIFIED
}

func hooksFromProto(h *gantryv1.Hooks) stack.Hooks {
	return stack.Hooks{
		BeforeInit: h.GetBeforeInit(), AfterInit: h.GetAfterInit(), BeforePlan: h.GetBeforePlan(), AfterPlan: h.GetAfterPlan(),
		BeforeApply: h.GetBeforeApply(), AfterApply: h.GetAfterApply(), AfterRun: h.GetAfterRun(),
	}
}

func hooksToProto(h stack.Hooks) *gantryv1.Hooks {
	return &gantryv1.Hooks{
		BeforeInit: h.BeforeInit, AfterInit: h.AfterInit, BeforePlan: h.BeforePlan, AfterPlan: h.AfterPlan,
		BeforeApply: h.BeforeApply, AfterApply: h.AfterApply, AfterRun: h.AfterRun,
	}
}

// envToProto converts a variable of the read model, which never holds a
// secret's value; Value is cleared for secrets all the same.
func envToProto(e projections.EnvVarView) *gantryv1.EnvVar {
	v := &gantryv1.EnvVar{Key: e.Key, Name: e.Name, Scope: scopeToProto(e.Scope), Secret: e.Secret, Value: e.Value}
	if e.Secret {
		v.Value = ""
	}
	return v
}

func stackToProto(v projections.StackView) *gantryv1.Stack {
	out := &gantryv1.Stack{
		Id: v.ID, Name: v.Name, Description: v.Description, RepositoryUrl: v.RepositoryURL, Branch: v.Branch,
		ProjectRoot: v.ProjectRoot, Tool: toolToProto(v.Tool), WorkerPoolId: v.WorkerPoolID, RunnerImage: v.RunnerImage,
		Autodeploy: v.Autodeploy, Labels: v.Labels, Hooks: hooksToProto(v.Hooks), ManagedState: v.ManagedState,
		LockHolderRunId: v.LockHolderRunID, QueuedRunIds: v.QueuedRunIDs,
		CreatedAt: timestamppb.New(v.CreatedAt), CreatedBy: v.CreatedBy, UpdatedAt: timestamppb.New(v.UpdatedAt),
		VcsIntegrationId: v.VCSIntegrationID,
	}
	for _, e := range v.Env {
		out.Env = append(out.Env, envToProto(e))
	}
	if l := v.ManualLock; l != nil {
		out.ManualLock = &gantryv1.ManualLock{Holder: l.Holder, Note: l.Note, LockedAt: timestamppb.New(l.LockedAt)}
	}
	return out
}

// stackUpdaters apply one field of an UpdateStackRequest, by update mask path.
var stackUpdaters = map[string]func(m *gantryv1.UpdateStackRequest, s *stack.Settings){
	"name": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) { s.Name = m.GetName() },
	"description": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.Description = m.GetDescription()
	},
	"repository_url": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.RepositoryURL = m.GetRepositoryUrl()
	},
	"branch": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) { s.Branch = m.GetBranch() },
	"project_root": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.ProjectRoot = m.GetProjectRoot()
	},
	"worker_pool_id": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.WorkerPoolID = m.GetWorkerPoolId()
	},
	"runner_image": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.RunnerImage = m.GetRunnerImage()
	},
	"autodeploy": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.Autodeploy = m.GetAutodeploy()
	},
	"labels": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) { s.Labels = m.GetLabels() },
	"hooks": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) {
		s.Hooks = hooksFromProto(m.GetHooks())
	},
	"tool": func(m *gantryv1.UpdateStackRequest, s *stack.Settings) { s.Tool, _ = toolFromProto(m.GetTool()) }, // checked by stackChange
}

// stackChange validates the update mask and returns the edit it asks for.
func stackChange(m *gantryv1.UpdateStackRequest) (func(*stack.Settings), error) {
	paths := m.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, &invalidArgumentError{field: "update_mask", reason: "name the fields to change, e.g. branch or hooks"}
	}
	known := make([]string, 0, len(stackUpdaters))
	for p := range stackUpdaters {
		known = append(known, p)
	}
	slices.Sort(known)
	for _, p := range paths {
		if _, ok := stackUpdaters[p]; !ok {
			return nil, &invalidArgumentError{field: "update_mask", reason: fmt.Sprintf("%q is not a field UpdateStack changes (%s)", p, strings.Join(known, ", "))}
		}
	}
	if slices.Contains(paths, "tool") {
		if _, err := toolFromProto(m.GetTool()); err != nil {
			return nil, err
		}
	}
	return func(s *stack.Settings) {
		for _, p := range paths {
			stackUpdaters[p](m, s)
		}
	}, nil
}

// checkPageSize refuses a negative page size; larger ones than the maximum
// are capped by the queries.
func checkPageSize(n int32) error {
	if n < 0 {
		return &invalidArgumentError{field: "page_size", reason: fmt.Sprintf("must not be negative, got %d", n)}
	}
	return nil
}
