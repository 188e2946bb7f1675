package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// ScheduleCommands changes schedules; *commands.Service satisfies it.
type ScheduleCommands interface {
	ResolveStack(ctx context.Context, ref string) (string, error)
	SetDriftDetection(ctx context.Context, c commands.Caller, stackRef, expr string, reconcile bool) (string, error)
	AddSchedule(ctx context.Context, c commands.Caller, stackRef string, kind schedule.Kind, expr, taskCommand string) (string, error)
	DeleteSchedule(ctx context.Context, c commands.Caller, id string) error
}

// ScheduleQueries reads schedules; *projections.Queries satisfies it.
type ScheduleQueries interface {
	ListSchedules(ctx context.Context, stackID string) ([]projections.ScheduleView, error)
	DriftDetections(ctx context.Context, stackID string, limit int) ([]projections.DriftView, error)
}

// ScheduleService serves gantry.v1.ScheduleService.
type ScheduleService struct {
	handlerBase
	cmds    ScheduleCommands
	queries ScheduleQueries
}

var _ gantryv1connect.ScheduleServiceHandler = (*ScheduleService)(nil)

// NewScheduleService returns the schedule service; log may be nil.
func NewScheduleService(cmds ScheduleCommands, queries ScheduleQueries, identify Identify, log *slog.Logger) *ScheduleService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ScheduleService{handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.ScheduleServiceName)}, cmds: cmds, queries: queries}
}

// Route returns the service's Connect handler and its path.
func (s *ScheduleService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewScheduleServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// SetDriftDetection sets a stack's drift detection.
func (s *ScheduleService) SetDriftDetection(ctx context.Context, req *connect.Request[gantryv1.SetDriftDetectionRequest]) (*connect.Response[gantryv1.SetDriftDetectionResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.SetDriftDetection(ctx, caller, req.Msg.GetStack(), req.Msg.GetCron(), req.Msg.GetReconcile())
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.SetDriftDetectionResponse{ScheduleId: id}), nil
}

// AddSchedule adds a TRACKED or TASK schedule.
func (s *ScheduleService) AddSchedule(ctx context.Context, req *connect.Request[gantryv1.AddScheduleRequest]) (*connect.Response[gantryv1.AddScheduleResponse], error) {
	var kind schedule.Kind
	switch req.Msg.GetKind() {
	case gantryv1.ScheduleKind_SCHEDULE_KIND_TRACKED:
		kind = schedule.Tracked
	case gantryv1.ScheduleKind_SCHEDULE_KIND_TASK:
		kind = schedule.Task
	default:
		return nil, s.fail(&invalidArgumentError{field: "kind", reason: "must be TRACKED or TASK (drift detection is SetDriftDetection)"})
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.AddSchedule(ctx, caller, req.Msg.GetStack(), kind, req.Msg.GetCron(), req.Msg.GetTaskCommand())
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.AddScheduleResponse{ScheduleId: id}), nil
}

// ListSchedules lists a stack's schedules.
func (s *ScheduleService) ListSchedules(ctx context.Context, req *connect.Request[gantryv1.ListSchedulesRequest]) (*connect.Response[gantryv1.ListSchedulesResponse], error) {
	stackID, err := s.cmds.ResolveStack(ctx, req.Msg.GetStack())
	if err != nil {
		return nil, s.fail(err)
	}
	list, err := s.queries.ListSchedules(ctx, stackID)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListSchedulesResponse{}
	for _, v := range list {
		p := &gantryv1.Schedule{Id: v.ID, StackId: v.StackID, Kind: scheduleKindToProto(v.Kind), Cron: v.Cron, Reconcile: v.Reconcile,
			TaskCommand: v.TaskCommand, LastRunId: v.LastRunID, LastError: v.LastError}
		if v.LastTick != nil {
			p.LastTick = timestamppb.New(*v.LastTick)
		}
		out.Schedules = append(out.Schedules, p)
	}
	return connect.NewResponse(out), nil
}

// DeleteSchedule removes a schedule.
func (s *ScheduleService) DeleteSchedule(ctx context.Context, req *connect.Request[gantryv1.DeleteScheduleRequest]) (*connect.Response[gantryv1.DeleteScheduleResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	if req.Msg.GetSchedule() == "" {
		return nil, s.fail(&invalidArgumentError{field: "schedule", reason: "must not be empty"})
	}
	if err := s.cmds.DeleteSchedule(ctx, caller, req.Msg.GetSchedule()); err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.DeleteScheduleResponse{}), nil
}

// ListDriftDetections lists the drift found on a stack.
func (s *ScheduleService) ListDriftDetections(ctx context.Context, req *connect.Request[gantryv1.ListDriftDetectionsRequest]) (*connect.Response[gantryv1.ListDriftDetectionsResponse], error) {
	stackID, err := s.cmds.ResolveStack(ctx, req.Msg.GetStack())
	if err != nil {
		return nil, s.fail(err)
	}
	list, err := s.queries.DriftDetections(ctx, stackID, 0)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListDriftDetectionsResponse{}
	for _, v := range list {
		out.Detections = append(out.Detections, &gantryv1.DriftDetection{RunId: v.RunID, Commit: v.Commit, Resources: v.Resources,
			ReconcileRunId: v.ReconcileRunID, Time: timestamppb.New(v.At)})
	}
	return connect.NewResponse(out), nil
}

func scheduleKindToProto(k string) gantryv1.ScheduleKind {
	switch schedule.Kind(k) {
	case schedule.Drift:
		return gantryv1.ScheduleKind_SCHEDULE_KIND_DRIFT
	case schedule.Tracked:
		return gantryv1.ScheduleKind_SCHEDULE_KIND_TRACKED
	case schedule.Task:
		return gantryv1.ScheduleKind_SCHEDULE_KIND_TASK
	}
	return gantryv1.ScheduleKind_SCHEDULE_KIND_UNSPECIFIED
}
