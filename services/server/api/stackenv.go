package api

import (
	"context"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// StackEnvCommands mounts files; *commands.Service satisfies it.
type StackEnvCommands interface {
	MountStackFile(ctx context.Context, c commands.Caller, ref, path string, content []byte) (id, clean string, err error)
}

// StackEnvQueries reads a stack's variables and files; *projections.Queries
// satisfies it.
type StackEnvQueries interface {
	GetStack(ctx context.Context, idOrName string) (projections.StackView, error)
	StackFiles(ctx context.Context, stackID string) ([]projections.MountedFileView, error)
}

// StackEnvService serves gantry.v1.StackEnvService.
type StackEnvService struct {
	handlerBase
	cmds    StackEnvCommands
	queries StackEnvQueries
}

var _ gantryv1connect.StackEnvServiceHandler = (*StackEnvService)(nil)

// NewStackEnvService returns the stack environment service. identify names
// the caller of each request; log may be nil (discard).
func NewStackEnvService(cmds StackEnvCommands, queries StackEnvQueries, identify Identify, log *slog.Logger) *StackEnvService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StackEnvService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.StackEnvServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *StackEnvService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewStackEnvServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// ListStackEnv lists a stack's variables and mounted files, without secret
// values or contents.
func (s *StackEnvService) ListStackEnv(ctx context.Context, req *connect.Request[gantryv1.ListStackEnvRequest]) (*connect.Response[gantryv1.ListStackEnvResponse], error) {
	if _, ok := s.identify(ctx); !ok {
		return nil, s.fail(errUnauthenticated)
	}
	if req.Msg.GetStack() == "" {
		return nil, s.fail(&invalidArgumentError{field: "stack", reason: "must not be empty: give a stack id or name"})
	}
	v, err := s.queries.GetStack(ctx, req.Msg.GetStack())
	if err != nil {
		return nil, s.fail(err)
	}
	files, err := s.queries.StackFiles(ctx, v.ID)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListStackEnvResponse{}
	for _, e := range v.Env {
		out.Env = append(out.Env, envToProto(e))
	}
	for _, f := range files {
		out.Files = append(out.Files, fileToProto(f))
	}
	return connect.NewResponse(out), nil
}

// MountStackFile mounts a file in the workspace of the stack's runs.
func (s *StackEnvService) MountStackFile(ctx context.Context, req *connect.Request[gantryv1.MountStackFileRequest]) (*connect.Response[gantryv1.MountStackFileResponse], error) {
	m := req.Msg
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, path, err := s.cmds.MountStackFile(ctx, caller, m.GetStack(), m.GetPath(), m.GetContent())
	if err != nil {
		return nil, s.fail(err)
	}
	files, err := s.queries.StackFiles(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	for _, f := range files {
		if f.Path == path {
			return connect.NewResponse(&gantryv1.MountStackFileResponse{File: fileToProto(f)}), nil
		}
	}
	return nil, s.fail(fmt.Errorf("stack %s: file %s was mounted but the read model does not list it", id, path))
}

func fileToProto(f projections.MountedFileView) *gantryv1.MountedFile {
	return &gantryv1.MountedFile{Path: f.Path, Size: f.Size, UpdatedAt: timestamppb.New(f.UpdatedAt)}
}
