package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/state"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/statebackend"
)

// StateOutputs reads the outputs of a stack's current state version;
// *statebackend.Service satisfies it.
type StateOutputs interface {
	Outputs(ctx context.Context, stackID string) (state.Version, []statebackend.Output, error)
}

// OutputService serves gantry.v1.StackOutputService.
type OutputService struct {
	handlerBase
	outputs StateOutputs
	stacks  StateStacks
}

var _ gantryv1connect.StackOutputServiceHandler = (*OutputService)(nil)

// NewOutputService returns the stack output service. identify names the
// caller of each request; log may be nil (discard).
func NewOutputService(outputs StateOutputs, stacks StateStacks, identify Identify, log *slog.Logger) *OutputService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OutputService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.StackOutputServiceName)},
		outputs:     outputs, stacks: stacks,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *OutputService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewStackOutputServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// GetStackOutputs returns the outputs of a managed stack's current state
// version; a sensitive value only to a caller who may read secrets.
func (s *OutputService) GetStackOutputs(ctx context.Context, req *connect.Request[gantryv1.GetStackOutputsRequest]) (*connect.Response[gantryv1.GetStackOutputsResponse], error) {
	caller, ok := s.identify(ctx)
	if !ok {
		return nil, s.fail(errUnauthenticated)
	}
	ref := req.Msg.GetStack()
	if ref == "" {
		return nil, s.fail(&invalidArgumentError{field: "stack", reason: "must not be empty: give a stack id or name"})
	}
	id, err := s.stacks.ResolveStack(ctx, ref)
	if err != nil {
		return nil, s.fail(err)
	}
	st, err := s.stacks.StackState(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	if !st.ManagedState() {
		return nil, s.fail(&notManagedError{stack: ref})
	}
	v, outputs, err := s.outputs.Outputs(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.GetStackOutputsResponse{StateVersion: int64(v.Version)}
	for _, o := range outputs {
		p := &gantryv1.StackOutput{Name: o.Name, Value: string(o.Value), Type: string(o.Type), Sensitive: o.Sensitive}
		if o.Sensitive && !caller.CanReadSecrets() {
			p.Value, p.Hidden = "", true
		}
		out.Outputs = append(out.Outputs, p)
	}
	return connect.NewResponse(out), nil
}
