package api

import (
	"context"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/statebackend"
)

// StateBackend keeps managed state; *statebackend.Service satisfies it.
type StateBackend interface {
	State(ctx context.Context, stackID string) (state.State, error)
	Download(ctx context.Context, stackID string, n int, actor string) ([]byte, state.Version, error)
	Rollback(ctx context.Context, stackID string, n int, actor string, facts statebackend.RollbackFacts) (state.Version, error)
}

// StateStacks finds stacks and loads their aggregate; *commands.Service
// satisfies it.
type StateStacks interface {
	ResolveStack(ctx context.Context, ref string) (string, error)
	StackState(ctx context.Context, id string) (stack.State, error)
	// KnownStack also loads a deleted stack, whose state stays readable.
	KnownStack(ctx context.Context, id string) (stack.State, error)
}

// StateService serves gantry.v1.StateService.
type StateService struct {
	handlerBase
	backend StateBackend
	stacks  StateStacks
}

var _ gantryv1connect.StateServiceHandler = (*StateService)(nil)

// NewStateService returns the state service. identify names the caller of
// each request; log may be nil (discard).
func NewStateService(backend StateBackend, stacks StateStacks, identify Identify, log *slog.Logger) *StateService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StateService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.StateServiceName)},
		backend:     backend, stacks: stacks,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *StateService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewStateServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// notManagedError names the stack whose state Gantry does not keep.
type notManagedError struct{ stack string }

func (e *notManagedError) Error() string {
	return fmt.Sprintf("stack %s does not use managed state (chosen at creation only)", e.stack)
}

func (e *notManagedError) Is(target error) bool { return target == statebackend.ErrNotManaged }

// managedStack resolves ref to a stack whose state Gantry manages and
// returns its id and aggregate state. With deleted, ref may also be the id
// of a deleted stack (its name is free): its state versions stay readable.
func (s *StateService) managedStack(ctx context.Context, ref string, deleted bool) (string, stack.State, error) {
	if ref == "" {
		return "", stack.State{}, &invalidArgumentError{field: "stack", reason: "must not be empty: give a stack id or name"}
	}
	id, err := s.stacks.ResolveStack(ctx, ref)
	if err != nil {
		return "", stack.State{}, err
	}
	load := s.stacks.StackState
	if deleted {
		load = s.stacks.KnownStack
	}
	st, err := load(ctx, id)
	if err != nil {
		return "", stack.State{}, err
	}
	if !st.ManagedState() {
		return "", stack.State{}, &notManagedError{stack: ref}
	}
	return id, st, nil
}

// versionNumber checks a request's version field.
func versionNumber(v int64, zeroOK bool) (int, error) {
	switch {
	case v < 0 || v == 0 && !zeroOK:
		return 0, &invalidArgumentError{field: "version", reason: fmt.Sprintf("%d is not a state version: versions start at 1", v)}
	case v > 1<<31:
		return 0, &invalidArgumentError{field: "version", reason: fmt.Sprintf("%d is too large", v)}
	}
	return int(v), nil
}

// ListStateVersions lists a managed stack's state versions, oldest first;
// those of a deleted stack too, by its id.
func (s *StateService) ListStateVersions(ctx context.Context, req *connect.Request[gantryv1.ListStateVersionsRequest]) (*connect.Response[gantryv1.ListStateVersionsResponse], error) {
	if _, ok := s.identify(ctx); !ok {
		return nil, s.fail(errUnauthenticated)
	}
	id, _, err := s.managedStack(ctx, req.Msg.GetStack(), true)
	if err != nil {
		return nil, s.fail(err)
	}
	st, err := s.backend.State(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	cur, _ := st.Current()
	resp := &gantryv1.ListStateVersionsResponse{}
	for _, v := range st.Versions() {
		resp.Versions = append(resp.Versions, stateVersionToProto(v, v.Version == cur.Version))
	}
	return connect.NewResponse(resp), nil
}

// DownloadState returns one version's bytes and records the download; a
// deleted stack's too, by its id (the role table lets administrators only
// call it).
func (s *StateService) DownloadState(ctx context.Context, req *connect.Request[gantryv1.DownloadStateRequest]) (*connect.Response[gantryv1.DownloadStateResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	n, err := versionNumber(req.Msg.GetVersion(), true)
	if err != nil {
		return nil, s.fail(err)
	}
	id, _, err := s.managedStack(ctx, req.Msg.GetStack(), true)
	if err != nil {
		return nil, s.fail(err)
	}
	data, v, err := s.backend.Download(ctx, id, n, caller.Actor)
	if err != nil {
		return nil, s.fail(err)
	}
	st, err := s.backend.State(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	cur, _ := st.Current()
	return connect.NewResponse(&gantryv1.DownloadStateResponse{Version: stateVersionToProto(v, v.Version == cur.Version), State: data}), nil
}

// RollbackState restores an older version's content as a new version. The
// caller must hold the stack's manual lock and no run may be in progress.
func (s *StateService) RollbackState(ctx context.Context, req *connect.Request[gantryv1.RollbackStateRequest]) (*connect.Response[gantryv1.RollbackStateResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	n, err := versionNumber(req.Msg.GetVersion(), false)
	if err != nil {
		return nil, s.fail(err)
	}
	id, stk, err := s.managedStack(ctx, req.Msg.GetStack(), false)
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.backend.Rollback(ctx, id, n, caller.Actor, statebackend.RollbackFactsOf(stk, caller.Actor))
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.RollbackStateResponse{Version: stateVersionToProto(v, true)}), nil
}

func stateVersionToProto(v state.Version, current bool) *gantryv1.StateVersion {
	return &gantryv1.StateVersion{
		Version: int64(v.Version), Serial: v.Serial, Lineage: v.Lineage, Time: timestamppb.New(v.At),
		RunId: v.RunID, Size: v.Size, Sha256: v.SHA256, Md5: v.MD5, Kind: stateKindToProto(v.Kind),
		Actor: v.Actor, RolledBackFrom: int64(v.RolledBackFrom), Current: current,
	}
}

func stateKindToProto(k state.Kind) gantryv1.StateVersionKind {
	switch k {
	case state.KindWrite:
		return gantryv1.StateVersionKind_STATE_VERSION_KIND_WRITE
	case state.KindImport:
		return gantryv1.StateVersionKind_STATE_VERSION_KIND_IMPORT
	case state.KindRollback:
		return gantryv1.StateVersionKind_STATE_VERSION_KIND_ROLLBACK
	}
	return gantryv1.StateVersionKind_STATE_VERSION_KIND_UNSPECIFIED
}
