package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// RerunCommands retries and replans runs; *commands.Service satisfies it.
type RerunCommands interface {
	RetryRun(ctx context.Context, c commands.Caller, runID string) (string, error)
	ReplanRun(ctx context.Context, c commands.Caller, runID string) error
}

// RerunService serves gantry.v1.RerunService.
type RerunService struct {
	handlerBase
	cmds    RerunCommands
	queries RunQueries
}

var _ gantryv1connect.RerunServiceHandler = (*RerunService)(nil)

// NewRerunService returns the rerun service. identify names the caller of
// each request; log may be nil (discard).
func NewRerunService(cmds RerunCommands, queries RunQueries, identify Identify, log *slog.Logger) *RerunService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RerunService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.RerunServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *RerunService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewRerunServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// RetryRun queues a new run retrying a failed or stopped tracked run.
func (s *RerunService) RetryRun(ctx context.Context, req *connect.Request[gantryv1.RetryRunRequest]) (*connect.Response[gantryv1.RetryRunResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.RetryRun(ctx, caller, req.Msg.GetRun())
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetRun(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.RetryRunResponse{Run: runToProto(v)}), nil
}

// ReplanRun makes an UNCONFIRMED run plan again.
func (s *RerunService) ReplanRun(ctx context.Context, req *connect.Request[gantryv1.ReplanRunRequest]) (*connect.Response[gantryv1.ReplanRunResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	if err := s.cmds.ReplanRun(ctx, caller, req.Msg.GetRun()); err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetRun(ctx, req.Msg.GetRun())
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.ReplanRunResponse{Run: runToProto(v)}), nil
}
