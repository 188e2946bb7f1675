package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// RunCommands triggers runs and moves them along; *commands.Service
// satisfies it.
type RunCommands interface {
	TriggerRun(ctx context.Context, c commands.Caller, t commands.Trigger) (string, error)
	ConfirmRun(ctx context.Context, c commands.Caller, runID string) error
	DiscardRun(ctx context.Context, c commands.Caller, runID, note string) error
	CancelRun(ctx context.Context, c commands.Caller, runID, note string) error
	StopRun(ctx context.Context, c commands.Caller, runID, note string) error
}

// RunQueries reads runs, and stacks to resolve names; *projections.Queries
// satisfies it.
type RunQueries interface {
	GetRun(ctx context.Context, id string) (projections.RunView, error)
	ListRuns(ctx context.Context, stackID, pageToken string, size int) ([]projections.RunView, string, error)
	GetStack(ctx context.Context, idOrName string) (projections.StackView, error)
}

// RunService serves gantry.v1.RunService.
type RunService struct {
	handlerBase
	cmds    RunCommands
	queries RunQueries
	logs    *RunLogs   // nil: StreamRunLogs is unavailable (see WithLogs)
	reads   ReadWaiter // nil: GetRun cannot wait for an event (see WithReadWaiter)
}

var _ gantryv1connect.RunServiceHandler = (*RunService)(nil)

// NewRunService returns the run service. identify names the caller of each
// request; log may be nil (discard).
func NewRunService(cmds RunCommands, queries RunQueries, identify Identify, log *slog.Logger) *RunService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RunService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.RunServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *RunService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewRunServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// TriggerRun queues a tracked or proposed run.
func (s *RunService) TriggerRun(ctx context.Context, req *connect.Request[gantryv1.TriggerRunRequest]) (*connect.Response[gantryv1.TriggerRunResponse], error) {
	var typ run.Type
	switch req.Msg.GetType() {
	case gantryv1.RunType_RUN_TYPE_UNSPECIFIED, gantryv1.RunType_RUN_TYPE_TRACKED:
		typ = run.Tracked
	case gantryv1.RunType_RUN_TYPE_PROPOSED:
		typ = run.Proposed
	case gantryv1.RunType_RUN_TYPE_TASK:
		return nil, s.fail(&invalidArgumentError{field: "type", reason: "tasks are triggered with TriggerTask"})
	default:
		return nil, s.fail(&invalidArgumentError{field: "type", reason: fmt.Sprintf("unknown run type %d: use RUN_TYPE_TRACKED or RUN_TYPE_PROPOSED", req.Msg.GetType())})
	}
	v, err := s.trigger(ctx, commands.Trigger{Stack: req.Msg.GetStack(), Type: typ, Commit: req.Msg.GetCommit(), Destroy: req.Msg.GetDestroy()})
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.TriggerRunResponse{Run: runToProto(v)}), nil
}

// TriggerTask queues a task.
func (s *RunService) TriggerTask(ctx context.Context, req *connect.Request[gantryv1.TriggerTaskRequest]) (*connect.Response[gantryv1.TriggerTaskResponse], error) {
	v, err := s.trigger(ctx, commands.Trigger{
		Stack: req.Msg.GetStack(), Type: run.Task, Commit: req.Msg.GetCommit(), TaskCommand: req.Msg.GetCommand(),
	})
	// The domain names the command task_command, as runs store it; this
	// request calls it command.
	var invalid *domain.ValidationError
	if errors.As(err, &invalid) && invalid.Field == "task_command" {
		err = &invalidArgumentError{field: "command", reason: invalid.Problem}
	}
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.TriggerTaskResponse{Run: runToProto(v)}), nil
}

func (s *RunService) trigger(ctx context.Context, t commands.Trigger) (projections.RunView, error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return projections.RunView{}, err
	}
	id, err := s.cmds.TriggerRun(ctx, caller, t)
	if err != nil {
		return projections.RunView{}, err
	}
	return s.queries.GetRun(ctx, id)
}

// GetRun returns a run with its history.
func (s *RunService) GetRun(ctx context.Context, req *connect.Request[gantryv1.GetRunRequest]) (*connect.Response[gantryv1.GetRunResponse], error) {
	if req.Msg.GetRun() == "" {
		return nil, s.fail(&invalidArgumentError{field: "run", reason: "must not be empty"})
	}
	if c := req.Msg.GetMinCursor(); c != nil {
		if err := s.waitForEvent(ctx, c); err != nil {
			return nil, err
		}
	}
	v, err := s.queries.GetRun(ctx, req.Msg.GetRun())
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.GetRunResponse{Run: runToProto(v)}), nil
}

// ListRuns returns a page of a stack's runs, newest first.
func (s *RunService) ListRuns(ctx context.Context, req *connect.Request[gantryv1.ListRunsRequest]) (*connect.Response[gantryv1.ListRunsResponse], error) {
	if req.Msg.GetStack() == "" {
		return nil, s.fail(&invalidArgumentError{field: "stack", reason: "must not be empty: give a stack id or name"})
	}
	if err := checkPageSize(req.Msg.GetPageSize()); err != nil {
		return nil, s.fail(err)
	}
	stk, err := s.queries.GetStack(ctx, req.Msg.GetStack())
	if err != nil {
		return nil, s.fail(err)
	}
	views, next, err := s.queries.ListRuns(ctx, stk.ID, req.Msg.GetPageToken(), int(req.Msg.GetPageSize()))
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListRunsResponse{NextPageToken: next, Runs: make([]*gantryv1.Run, len(views))}
	for i, v := range views {
		out.Runs[i] = runToProto(v)
	}
	return connect.NewResponse(out), nil
}

// ConfirmRun approves a plan.
func (s *RunService) ConfirmRun(ctx context.Context, req *connect.Request[gantryv1.ConfirmRunRequest]) (*connect.Response[gantryv1.ConfirmRunResponse], error) {
	v, err := s.change(ctx, req.Msg.GetRun(), func(ctx context.Context, c commands.Caller, id string) error {
		return s.cmds.ConfirmRun(ctx, c, id)
	})
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.ConfirmRunResponse{Run: v}), nil
}

// DiscardRun rejects a run.
func (s *RunService) DiscardRun(ctx context.Context, req *connect.Request[gantryv1.DiscardRunRequest]) (*connect.Response[gantryv1.DiscardRunResponse], error) {
	v, err := s.change(ctx, req.Msg.GetRun(), func(ctx context.Context, c commands.Caller, id string) error {
		return s.cmds.DiscardRun(ctx, c, id, req.Msg.GetNote())
	})
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.DiscardRunResponse{Run: v}), nil
}

// CancelRun withdraws a run.
func (s *RunService) CancelRun(ctx context.Context, req *connect.Request[gantryv1.CancelRunRequest]) (*connect.Response[gantryv1.CancelRunResponse], error) {
	v, err := s.change(ctx, req.Msg.GetRun(), func(ctx context.Context, c commands.Caller, id string) error {
		return s.cmds.CancelRun(ctx, c, id, req.Msg.GetNote())
	})
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.CancelRunResponse{Run: v}), nil
}

// StopRun asks a run to stop.
func (s *RunService) StopRun(ctx context.Context, req *connect.Request[gantryv1.StopRunRequest]) (*connect.Response[gantryv1.StopRunResponse], error) {
	v, err := s.change(ctx, req.Msg.GetRun(), func(ctx context.Context, c commands.Caller, id string) error {
		return s.cmds.StopRun(ctx, c, id, req.Msg.GetNote())
	})
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.StopRunResponse{Run: v}), nil
}

// change runs a lifecycle command on a run and returns the run after it.
func (s *RunService) change(ctx context.Context, runID string, do func(context.Context, commands.Caller, string) error) (*gantryv1.Run, error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, err
	}
	if err := do(ctx, caller, runID); err != nil {
		return nil, err
	}
	v, err := s.queries.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	return runToProto(v), nil
}

func runTypeToProto(t run.Type) gantryv1.RunType {
	switch t {
	case run.Tracked:
		return gantryv1.RunType_RUN_TYPE_TRACKED
	case run.Proposed:
		return gantryv1.RunType_RUN_TYPE_PROPOSED
	case run.Task:
		return gantryv1.RunType_RUN_TYPE_TASK
	}
	return gantryv1.RunType_RUN_TYPE_UNSPECIFIED
}

// runStateToProto maps a status to the enum value of the same name.
func runStateToProto(st run.Status) gantryv1.RunState {
	return gantryv1.RunState(gantryv1.RunState_value["RUN_STATE_"+strings.ToUpper(string(st))])
}

func runToProto(v projections.RunView) *gantryv1.Run {
	out := &gantryv1.Run{
		Id: v.ID, StackId: v.StackID, Type: runTypeToProto(v.Type), State: runStateToProto(v.Status), Commit: v.Commit,
		TaskCommand: v.TaskCommand, DriftDetection: v.Drift, Autodeploy: v.Autodeploy, TriggeredBy: v.TriggeredBy,
		CreatedAt: timestamppb.New(v.CreatedAt), UpdatedAt: timestamppb.New(v.UpdatedAt), WorkerId: v.WorkerID,
		StopRequestedBy: v.StopRequestedBy, HasChanges: v.HasChanges, StopNote: v.StopNote, Destroy: v.Destroy, RetryOf: v.RetryOf,
	}
	if p := v.Plan; p != nil {
		out.Plan = &gantryv1.PlanSummary{Add: int32(p.Add), Change: int32(p.Change), Destroy: int32(p.Destroy)}
	}
	for _, h := range v.History {
		out.History = append(out.History, &gantryv1.RunStateChange{
			State: runStateToProto(h.Status), Time: timestamppb.New(h.At), Actor: h.Actor, Note: h.Note, WorkerId: h.WorkerID,
		})
	}
	for _, o := range v.Outputs {
		out.Outputs = append(out.Outputs, &gantryv1.RunOutput{
			Name: o.Name, Sensitive: o.Sensitive, Value: string(o.Value), Type: string(o.Type), ValueStored: o.Sealed,
		})
	}
	return out
}
