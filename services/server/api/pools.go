package api

import (
	"context"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// PoolCommands changes worker pools and workers; *commands.Service
// satisfies it.
type PoolCommands interface {
	CreatePool(ctx context.Context, c commands.Caller, in commands.NewPool) (poolID, token string, err error)
	ResetPool(ctx context.Context, c commands.Caller, ref string, csr []byte) (poolID, token string, err error)
	CyclePool(ctx context.Context, c commands.Caller, ref string) (string, error)
	DrainWorker(ctx context.Context, c commands.Caller, poolRef, workerID string) (string, error)
	UndrainWorker(ctx context.Context, c commands.Caller, poolRef, workerID string) (string, error)
}

// PoolQueries reads pools, their workers, queues and stacks;
// *projections.Queries satisfies it.
type PoolQueries interface {
	GetPool(ctx context.Context, idOrName string) (projections.PoolView, error)
	ListPools(ctx context.Context, pageToken string, size int) ([]projections.PoolView, string, error)
	ListWorkers(ctx context.Context, poolID string) ([]projections.WorkerView, error)
	PoolQueue(ctx context.Context, poolID string) ([]projections.QueueEntry, error)
	UsedBy(ctx context.Context, poolID string) ([]projections.StackRef, error)
}

// PoolService serves gantry.v1.WorkerPoolService.
type PoolService struct {
	handlerBase
	cmds    PoolCommands
	queries PoolQueries
	// version is the server's own version, which ListWorkers compares the
	// launchers' with ("" or a development build: nobody is flagged).
	version string
}

var _ gantryv1connect.WorkerPoolServiceHandler = (*PoolService)(nil)

// NewPoolService returns the worker pool service. identify names the caller
// of each request; log may be nil (discard).
func NewPoolService(cmds PoolCommands, queries PoolQueries, identify Identify, log *slog.Logger) *PoolService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PoolService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.WorkerPoolServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// WithServerVersion sets the server's version, against which ListWorkers
// flags the workers whose launcher is older.
func (s *PoolService) WithServerVersion(version string) *PoolService {
	s.version = version
	return s
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *PoolService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewWorkerPoolServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// CreateWorkerPool creates a private pool and returns its token.
func (s *PoolService) CreateWorkerPool(ctx context.Context, req *connect.Request[gantryv1.CreateWorkerPoolRequest]) (*connect.Response[gantryv1.CreateWorkerPoolResponse], error) {
	m := req.Msg
	if err := checkCSR(m.GetCsr()); err != nil {
		return nil, s.fail(err)
	}
	if m.GetDriftDetectionRunLimit() < 0 {
		return nil, s.fail(&invalidArgumentError{field: "drift_detection_run_limit", reason: "must be 0 (no limit) or a maximum of at least 1"})
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, token, err := s.cmds.CreatePool(ctx, caller, commands.NewPool{
		Name: m.GetName(), CSR: []byte(m.GetCsr()), Description: m.GetDescription(), Labels: m.GetLabels(),
		DriftRunLimit: int(m.GetDriftDetectionRunLimit()),
	})
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetPool(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.CreateWorkerPoolResponse{Pool: poolToProto(v), Token: token}), nil
}

// ResetWorkerPool gives a pool a new certificate and secret.
func (s *PoolService) ResetWorkerPool(ctx context.Context, req *connect.Request[gantryv1.ResetWorkerPoolRequest]) (*connect.Response[gantryv1.ResetWorkerPoolResponse], error) {
	if err := checkCSR(req.Msg.GetCsr()); err != nil {
		return nil, s.fail(err)
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, token, err := s.cmds.ResetPool(ctx, caller, req.Msg.GetPool(), []byte(req.Msg.GetCsr()))
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetPool(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.ResetWorkerPoolResponse{Pool: poolToProto(v), Token: token}), nil
}

// checkCSR refuses a missing CSR before anything else is looked at.
func checkCSR(csr string) error {
	if csr == "" {
		return &invalidArgumentError{field: "csr", reason: "must not be empty: upload a PEM certificate signing request"}
	}
	return nil
}

// GetWorkerPool returns a pool by id or name, with the stacks using it.
func (s *PoolService) GetWorkerPool(ctx context.Context, req *connect.Request[gantryv1.GetWorkerPoolRequest]) (*connect.Response[gantryv1.GetWorkerPoolResponse], error) {
	v, err := s.pool(ctx, req.Msg.GetPool())
	if err != nil {
		return nil, s.fail(err)
	}
	refs, err := s.queries.UsedBy(ctx, v.ID)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.GetWorkerPoolResponse{Pool: poolToProto(v), UsedBy: stackRefsToProto(refs)}), nil
}

// ListWorkerPools returns a page of pools by name.
func (s *PoolService) ListWorkerPools(ctx context.Context, req *connect.Request[gantryv1.ListWorkerPoolsRequest]) (*connect.Response[gantryv1.ListWorkerPoolsResponse], error) {
	if err := checkPageSize(req.Msg.GetPageSize()); err != nil {
		return nil, s.fail(err)
	}
	views, next, err := s.queries.ListPools(ctx, req.Msg.GetPageToken(), int(req.Msg.GetPageSize()))
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListWorkerPoolsResponse{NextPageToken: next, Pools: make([]*gantryv1.WorkerPool, len(views))}
	for i, v := range views {
		out.Pools[i] = poolToProto(v)
	}
	return connect.NewResponse(out), nil
}

// ListWorkers lists a pool's live workers.
func (s *PoolService) ListWorkers(ctx context.Context, req *connect.Request[gantryv1.ListWorkersRequest]) (*connect.Response[gantryv1.ListWorkersResponse], error) {
	p, err := s.pool(ctx, req.Msg.GetPool())
	if err != nil {
		return nil, s.fail(err)
	}
	views, err := s.queries.ListWorkers(ctx, p.ID)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListWorkersResponse{Workers: make([]*gantryv1.Worker, len(views)), ServerVersion: s.version}
	for i, v := range views {
		out.Workers[i] = workerToProto(v, s.version)
	}
	return connect.NewResponse(out), nil
}

// GetPoolQueue lists a pool's runs in progress, then those it can schedule.
func (s *PoolService) GetPoolQueue(ctx context.Context, req *connect.Request[gantryv1.GetPoolQueueRequest]) (*connect.Response[gantryv1.GetPoolQueueResponse], error) {
	p, err := s.pool(ctx, req.Msg.GetPool())
	if err != nil {
		return nil, s.fail(err)
	}
	entries, err := s.queries.PoolQueue(ctx, p.ID)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.GetPoolQueueResponse{Runs: make([]*gantryv1.QueuedRun, len(entries))}
	for i, e := range entries {
		out.Runs[i] = queueEntryToProto(e)
	}
	return connect.NewResponse(out), nil
}

// GetUsedBy lists the stacks of a pool.
func (s *PoolService) GetUsedBy(ctx context.Context, req *connect.Request[gantryv1.GetUsedByRequest]) (*connect.Response[gantryv1.GetUsedByResponse], error) {
	p, err := s.pool(ctx, req.Msg.GetPool())
	if err != nil {
		return nil, s.fail(err)
	}
	refs, err := s.queries.UsedBy(ctx, p.ID)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.GetUsedByResponse{Stacks: stackRefsToProto(refs)}), nil
}

// DrainWorker stops a worker from taking new runs.
func (s *PoolService) DrainWorker(ctx context.Context, req *connect.Request[gantryv1.DrainWorkerRequest]) (*connect.Response[gantryv1.DrainWorkerResponse], error) {
	w, err := s.workerChange(ctx, req.Msg.GetPool(), req.Msg.GetWorker(), s.cmds.DrainWorker)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.DrainWorkerResponse{Worker: w}), nil
}

// UndrainWorker lets a drained worker take runs again.
func (s *PoolService) UndrainWorker(ctx context.Context, req *connect.Request[gantryv1.UndrainWorkerRequest]) (*connect.Response[gantryv1.UndrainWorkerResponse], error) {
	w, err := s.workerChange(ctx, req.Msg.GetPool(), req.Msg.GetWorker(), s.cmds.UndrainWorker)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.UndrainWorkerResponse{Worker: w}), nil
}

// workerChange runs a worker command and returns the worker after it.
func (s *PoolService) workerChange(ctx context.Context, poolRef, workerID string,
	do func(context.Context, commands.Caller, string, string) (string, error)) (*gantryv1.Worker, error) {
	if poolRef == "" {
		return nil, &invalidArgumentError{field: "pool", reason: "must not be empty: give a worker pool id or name"}
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := do(ctx, caller, poolRef, workerID); err != nil {
		return nil, err
	}
	p, err := s.queries.GetPool(ctx, poolRef)
	if err != nil {
		return nil, err
	}
	workers, err := s.queries.ListWorkers(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	for _, w := range workers {
		if w.ID == workerID {
			return workerToProto(w, s.version), nil
		}
	}
	return nil, fmt.Errorf("worker %s of pool %s: %w", workerID, p.ID, domain.ErrNotFound)
}

// CyclePool asks every worker of a pool to exit.
func (s *PoolService) CyclePool(ctx context.Context, req *connect.Request[gantryv1.CyclePoolRequest]) (*connect.Response[gantryv1.CyclePoolResponse], error) {
	if req.Msg.GetPool() == "" {
		return nil, s.fail(&invalidArgumentError{field: "pool", reason: "must not be empty: give a worker pool id or name"})
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.CyclePool(ctx, caller, req.Msg.GetPool())
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetPool(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.CyclePoolResponse{Pool: poolToProto(v)}), nil
}

// pool reads the pool ref names (id or name).
func (s *PoolService) pool(ctx context.Context, ref string) (projections.PoolView, error) {
	if ref == "" {
		return projections.PoolView{}, &invalidArgumentError{field: "pool", reason: "must not be empty: give a worker pool id or name"}
	}
	return s.queries.GetPool(ctx, ref)
}
