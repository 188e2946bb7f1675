package api

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// PoolAdminCommands changes and deletes pools; *commands.Service satisfies it.
type PoolAdminCommands interface {
	UpdatePool(ctx context.Context, c commands.Caller, ref string, change func(*commands.PoolSettings)) (string, error)
	DeletePool(ctx context.Context, c commands.Caller, ref string, usedBy []string) (string, error)
}

// PoolAdminService serves gantry.v1.WorkerPoolAdminService.
type PoolAdminService struct {
	handlerBase
	cmds    PoolAdminCommands
	queries PoolQueries
}

var _ gantryv1connect.WorkerPoolAdminServiceHandler = (*PoolAdminService)(nil)

// NewPoolAdminService returns the worker pool administration service.
// identify names the caller of each request; log may be nil (discard).
func NewPoolAdminService(cmds PoolAdminCommands, queries PoolQueries, identify Identify, log *slog.Logger) *PoolAdminService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PoolAdminService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.WorkerPoolAdminServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *PoolAdminService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewWorkerPoolAdminServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// poolUpdaters apply one field of an UpdateWorkerPoolRequest, by update
// mask path.
var poolUpdaters = map[string]func(m *gantryv1.UpdateWorkerPoolRequest, p *commands.PoolSettings){
	"description": func(m *gantryv1.UpdateWorkerPoolRequest, p *commands.PoolSettings) {
		p.Description = m.GetDescription()
	},
	"labels": func(m *gantryv1.UpdateWorkerPoolRequest, p *commands.PoolSettings) { p.Labels = m.GetLabels() },
	"drift_detection_run_limit": func(m *gantryv1.UpdateWorkerPoolRequest, p *commands.PoolSettings) {
		p.DriftRunLimit = int(m.GetDriftDetectionRunLimit())
	},
}

// poolChange validates the update mask and returns the edit it asks for.
func poolChange(m *gantryv1.UpdateWorkerPoolRequest) (func(*commands.PoolSettings), error) {
	paths := m.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, &invalidArgumentError{field: "update_mask", reason: "name the fields to change: description, labels or drift_detection_run_limit"}
	}
	known := make([]string, 0, len(poolUpdaters))
	for p := range poolUpdaters {
		known = append(known, p)
	}
	slices.Sort(known)
	for _, p := range paths {
		if _, ok := poolUpdaters[p]; !ok {
			return nil, &invalidArgumentError{field: "update_mask", reason: fmt.Sprintf("%q is not a field UpdateWorkerPool changes (%s)", p, strings.Join(known, ", "))}
		}
	}
	if slices.Contains(paths, "drift_detection_run_limit") && m.GetDriftDetectionRunLimit() < 0 {
		return nil, &invalidArgumentError{field: "drift_detection_run_limit", reason: "must be 0 (no limit) or a maximum of at least 1"}
	}
	return func(p *commands.PoolSettings) {
		for _, path := range paths {
			poolUpdaters[path](m, p)
		}
	}, nil
}

// UpdateWorkerPool changes the settings the update mask names.
func (s *PoolAdminService) UpdateWorkerPool(ctx context.Context, req *connect.Request[gantryv1.UpdateWorkerPoolRequest]) (*connect.Response[gantryv1.UpdateWorkerPoolResponse], error) {
	if req.Msg.GetPool() == "" {
		return nil, s.fail(&invalidArgumentError{field: "pool", reason: "must not be empty: give a worker pool id or name"})
	}
	change, err := poolChange(req.Msg)
	if err != nil {
		return nil, s.fail(err)
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.UpdatePool(ctx, caller, req.Msg.GetPool(), change)
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetPool(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.UpdateWorkerPoolResponse{Pool: poolToProto(v)}), nil
}

// DeleteWorkerPool deletes a pool no stack uses. The stacks come from the
// read model, which includes every change the caller made before.
func (s *PoolAdminService) DeleteWorkerPool(ctx context.Context, req *connect.Request[gantryv1.DeleteWorkerPoolRequest]) (*connect.Response[gantryv1.DeleteWorkerPoolResponse], error) {
	if req.Msg.GetPool() == "" {
		return nil, s.fail(&invalidArgumentError{field: "pool", reason: "must not be empty: give a worker pool id or name"})
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	pool, err := s.queries.GetPool(ctx, req.Msg.GetPool())
	if err != nil {
		return nil, s.fail(err)
	}
	refs, err := s.queries.UsedBy(ctx, pool.ID)
	if err != nil {
		return nil, s.fail(err)
	}
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	if _, err := s.cmds.DeletePool(ctx, caller, pool.ID, names); err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.DeleteWorkerPoolResponse{}), nil
}
