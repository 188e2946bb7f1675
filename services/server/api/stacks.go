package api

import (
	"context"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// StackCommands changes stacks; *commands.Service satisfies it. Each
// returns the stack's id.
type StackCommands interface {
	CreateStack(ctx context.Context, c commands.Caller, settings stack.Settings, managedState bool, importState []byte) (string, error)
	UpdateStack(ctx context.Context, c commands.Caller, ref string, change func(*stack.Settings)) (string, error)
	DeleteStack(ctx context.Context, c commands.Caller, ref string, force bool) (string, error)
	LockStack(ctx context.Context, c commands.Caller, ref, note string) (string, error)
	UnlockStack(ctx context.Context, c commands.Caller, ref string, force bool) (string, error)
	SetStackEnv(ctx context.Context, c commands.Caller, ref, key, value string, secret bool) (string, error)
	DeleteStackEnv(ctx context.Context, c commands.Caller, ref, key string) (string, error)
}

// StackQueries reads stacks; *projections.Queries satisfies it.
type StackQueries interface {
	GetStack(ctx context.Context, idOrName string) (projections.StackView, error)
	ListStacks(ctx context.Context, pageToken string, size int) ([]projections.StackView, string, error)
}

// StackService serves gantry.v1.StackService.
type StackService struct {
	handlerBase
	cmds    StackCommands
	queries StackQueries
}

var _ gantryv1connect.StackServiceHandler = (*StackService)(nil)

// NewStackService returns the stack service. identify names the caller of
// each request; log may be nil (discard).
func NewStackService(cmds StackCommands, queries StackQueries, identify Identify, log *slog.Logger) *StackService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StackService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.StackServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *StackService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewStackServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// CreateStack creates a stack.
func (s *StackService) CreateStack(ctx context.Context, req *connect.Request[gantryv1.CreateStackRequest]) (*connect.Response[gantryv1.CreateStackResponse], error) {
	m := req.Msg
	tool, err := toolFromProto(m.GetTool())
	if err != nil {
		return nil, s.fail(err)
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.CreateStack(ctx, caller, stack.Settings{
		Name: m.GetName(), Description: m.GetDescription(), RepositoryURL: m.GetRepositoryUrl(), Branch: m.GetBranch(),
		ProjectRoot: m.GetProjectRoot(), Tool: tool, WorkerPoolID: m.GetWorkerPoolId(), RunnerImage: m.GetRunnerImage(),
		Autodeploy: m.GetAutodeploy(), Labels: m.GetLabels(), Hooks: hooksFromProto(m.GetHooks()),
		VCSIntegrationID: m.GetVcsIntegration(),
	}, m.GetManagedState(), m.GetImportState())
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetStack(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.CreateStackResponse{Stack: stackToProto(v)}), nil
}

// GetStack returns a stack by id or name.
func (s *StackService) GetStack(ctx context.Context, req *connect.Request[gantryv1.GetStackRequest]) (*connect.Response[gantryv1.GetStackResponse], error) {
	if req.Msg.GetStack() == "" {
		return nil, s.fail(&invalidArgumentError{field: "stack", reason: "must not be empty: give a stack id or name"})
	}
	v, err := s.queries.GetStack(ctx, req.Msg.GetStack())
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.GetStackResponse{Stack: stackToProto(v)}), nil
}

// ListStacks returns a page of stacks by name.
func (s *StackService) ListStacks(ctx context.Context, req *connect.Request[gantryv1.ListStacksRequest]) (*connect.Response[gantryv1.ListStacksResponse], error) {
	if err := checkPageSize(req.Msg.GetPageSize()); err != nil {
		return nil, s.fail(err)
	}
	views, next, err := s.queries.ListStacks(ctx, req.Msg.GetPageToken(), int(req.Msg.GetPageSize()))
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListStacksResponse{NextPageToken: next, Stacks: make([]*gantryv1.Stack, len(views))}
	for i, v := range views {
		out.Stacks[i] = stackToProto(v)
	}
	return connect.NewResponse(out), nil
}

// UpdateStack changes the settings the update mask names.
func (s *StackService) UpdateStack(ctx context.Context, req *connect.Request[gantryv1.UpdateStackRequest]) (*connect.Response[gantryv1.UpdateStackResponse], error) {
	change, err := stackChange(req.Msg)
	if err != nil {
		return nil, s.fail(err)
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.UpdateStack(ctx, caller, req.Msg.GetStack(), change)
	if err != nil {
		return nil, s.fail(err)
	}
	return stackResponse(ctx, s, id, func(st *gantryv1.Stack) *gantryv1.UpdateStackResponse {
		return &gantryv1.UpdateStackResponse{Stack: st}
	})
}

// DeleteStack deletes a stack; one whose managed state holds resources only
// with force.
func (s *StackService) DeleteStack(ctx context.Context, req *connect.Request[gantryv1.DeleteStackRequest]) (*connect.Response[gantryv1.DeleteStackResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	if _, err := s.cmds.DeleteStack(ctx, caller, req.Msg.GetStack(), req.Msg.GetForce()); err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.DeleteStackResponse{}), nil
}

// LockStack takes the manual lock for the caller.
func (s *StackService) LockStack(ctx context.Context, req *connect.Request[gantryv1.LockStackRequest]) (*connect.Response[gantryv1.LockStackResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.LockStack(ctx, caller, req.Msg.GetStack(), req.Msg.GetNote())
	if err != nil {
		return nil, s.fail(err)
	}
	return stackResponse(ctx, s, id, func(st *gantryv1.Stack) *gantryv1.LockStackResponse {
		return &gantryv1.LockStackResponse{Stack: st}
	})
}

// UnlockStack releases the manual lock.
func (s *StackService) UnlockStack(ctx context.Context, req *connect.Request[gantryv1.UnlockStackRequest]) (*connect.Response[gantryv1.UnlockStackResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.UnlockStack(ctx, caller, req.Msg.GetStack(), req.Msg.GetForce())
	if err != nil {
		return nil, s.fail(err)
	}
	return stackResponse(ctx, s, id, func(st *gantryv1.Stack) *gantryv1.UnlockStackResponse {
		return &gantryv1.UnlockStackResponse{Stack: st}
	})
}

// SetStackEnv sets an environment variable; a secret's value never comes back.
func (s *StackService) SetStackEnv(ctx context.Context, req *connect.Request[gantryv1.SetStackEnvRequest]) (*connect.Response[gantryv1.SetStackEnvResponse], error) {
	m := req.Msg
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.SetStackEnv(ctx, caller, m.GetStack(), m.GetKey(), m.GetValue(), m.GetSecret())
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetStack(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	for _, e := range v.Env {
		if e.Key == m.GetKey() {
			return connect.NewResponse(&gantryv1.SetStackEnvResponse{Env: envToProto(e)}), nil
		}
	}
	return nil, s.fail(fmt.Errorf("stack %s: variable %s was set but the read model does not list it", id, m.GetKey()))
}

// DeleteStackEnv removes an environment variable.
func (s *StackService) DeleteStackEnv(ctx context.Context, req *connect.Request[gantryv1.DeleteStackEnvRequest]) (*connect.Response[gantryv1.DeleteStackEnvResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	if _, err := s.cmds.DeleteStackEnv(ctx, caller, req.Msg.GetStack(), req.Msg.GetKey()); err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.DeleteStackEnvResponse{}), nil
}

// stackResponse reads the stack a command changed and wraps it in a response.
func stackResponse[R any](ctx context.Context, s *StackService, id string, wrap func(*gantryv1.Stack) *R) (*connect.Response[R], error) {
	v, err := s.queries.GetStack(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(wrap(stackToProto(v))), nil
}
