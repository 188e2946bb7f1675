package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/server/commands"
)

// APIKeyCommands creates and revokes API keys; *commands.Service satisfies
// it.
type APIKeyCommands interface {
	CreateAPIKey(ctx context.Context, c commands.Caller, name string, role apikey.Role) (keyID, key string, err error)
	RevokeAPIKey(ctx context.Context, c commands.Caller, ref string) (string, error)
}

// APIKeyQueries reads API keys; *projections.Queries satisfies it.
type APIKeyQueries interface {
	GetAPIKey(ctx context.Context, id string) (projections.APIKeyView, error)
	ListAPIKeys(ctx context.Context, pageToken string, size int) ([]projections.APIKeyView, string, error)
}

// APIKeyService serves gantry.v1.ApiKeyService.
type APIKeyService struct {
	handlerBase
	cmds    APIKeyCommands
	queries APIKeyQueries
}

var _ gantryv1connect.ApiKeyServiceHandler = (*APIKeyService)(nil)

// NewAPIKeyService returns the API key service. identify names the caller
// of each request; log may be nil (discard).
func NewAPIKeyService(cmds APIKeyCommands, queries APIKeyQueries, identify Identify, log *slog.Logger) *APIKeyService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &APIKeyService{
		handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.ApiKeyServiceName)},
		cmds:        cmds, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *APIKeyService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewApiKeyServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// CreateApiKey creates a key and returns it, once.
func (s *APIKeyService) CreateApiKey(ctx context.Context, req *connect.Request[gantryv1.CreateApiKeyRequest]) (*connect.Response[gantryv1.CreateApiKeyResponse], error) {
	role, ok := roleFromProto(req.Msg.GetRole())
	if !ok {
		return nil, s.fail(&invalidArgumentError{field: "role", reason: "must be ROLE_READER, ROLE_WRITER or ROLE_ADMIN"})
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, key, err := s.cmds.CreateAPIKey(ctx, caller, req.Msg.GetName(), role)
	if errors.Is(err, commands.ErrNotCaughtUp) && key != "" {
		// The key exists: failing the call would leave a live key nobody
		// holds. Answer from what the command knows.
		s.log.WarnContext(ctx, "read models lag behind a new API key", "key_id", id)
		return connect.NewResponse(&gantryv1.CreateApiKeyResponse{Key: key,
			ApiKey: &gantryv1.ApiKey{Id: id, Name: req.Msg.GetName(), Role: req.Msg.GetRole(), CreatedBy: caller.Actor}}), nil
	}
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetAPIKey(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.CreateApiKeyResponse{ApiKey: apiKeyToProto(v), Key: key}), nil
}

// ListApiKeys lists the live keys by name.
func (s *APIKeyService) ListApiKeys(ctx context.Context, req *connect.Request[gantryv1.ListApiKeysRequest]) (*connect.Response[gantryv1.ListApiKeysResponse], error) {
	if err := checkPageSize(req.Msg.GetPageSize()); err != nil {
		return nil, s.fail(err)
	}
	views, next, err := s.queries.ListAPIKeys(ctx, req.Msg.GetPageToken(), int(req.Msg.GetPageSize()))
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListApiKeysResponse{NextPageToken: next, ApiKeys: make([]*gantryv1.ApiKey, len(views))}
	for i, v := range views {
		out.ApiKeys[i] = apiKeyToProto(v)
	}
	return connect.NewResponse(out), nil
}

// RevokeApiKey revokes a key by id or name.
func (s *APIKeyService) RevokeApiKey(ctx context.Context, req *connect.Request[gantryv1.RevokeApiKeyRequest]) (*connect.Response[gantryv1.RevokeApiKeyResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.RevokeAPIKey(ctx, caller, req.Msg.GetApiKey())
	if err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetAPIKey(ctx, id)
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.RevokeApiKeyResponse{ApiKey: apiKeyToProto(v)}), nil
}

// Exchanger opens session tokens for API keys; *auth.Sessions satisfies it.
type Exchanger interface {
	Exchange(ctx context.Context, key string) (auth.Session, error)
}

// SessionService serves gantry.v1.SessionService.
type SessionService struct {
	handlerBase
	sessions Exchanger
	queries  APIKeyQueries
}

var _ gantryv1connect.SessionServiceHandler = (*SessionService)(nil)

// NewSessionService returns the session service; log may be nil (discard).
func NewSessionService(sessions Exchanger, queries APIKeyQueries, log *slog.Logger) *SessionService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SessionService{
		handlerBase: handlerBase{log: log.With("service", gantryv1connect.SessionServiceName)},
		sessions:    sessions, queries: queries,
	}
}

// Route returns the service's Connect handler and the path to mount it on.
func (s *SessionService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewSessionServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// CreateSession exchanges an API key for a session token.
func (s *SessionService) CreateSession(ctx context.Context, req *connect.Request[gantryv1.CreateSessionRequest]) (*connect.Response[gantryv1.CreateSessionResponse], error) {
	if req.Msg.GetApiKey() == "" {
		return nil, s.fail(&invalidArgumentError{field: "api_key", reason: "must not be empty"})
	}
	sess, err := s.sessions.Exchange(ctx, req.Msg.GetApiKey())
	if err != nil {
		return nil, s.fail(err)
	}
	p := sess.Principal
	s.log.InfoContext(ctx, "session opened", "key_id", p.KeyID, "session_id", p.SessionID, "expires_at", sess.ExpiresAt)
	key := &gantryv1.ApiKey{Id: p.KeyID, Name: p.Subject, Role: roleToProto(p.Role)}
	v, err := s.queries.GetAPIKey(ctx, p.KeyID)
	switch {
	case err == nil:
		key = apiKeyToProto(v)
	case !errors.Is(err, projections.ErrNotFound):
		return nil, s.fail(err)
	}
	// Not found: the read models have not caught up with a key created a
	// moment ago through another path; what the session says is enough.
	return connect.NewResponse(&gantryv1.CreateSessionResponse{Token: sess.Token, ExpiresAt: timestamppb.New(sess.ExpiresAt), ApiKey: key}), nil
}

func apiKeyToProto(v projections.APIKeyView) *gantryv1.ApiKey {
	out := &gantryv1.ApiKey{Id: v.ID, Name: v.Name, Role: roleToProto(v.Role), CreatedAt: timestamppb.New(v.CreatedAt), CreatedBy: v.CreatedBy, RevokedBy: v.RevokedBy}
	if v.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*v.RevokedAt)
	}
	return out
}

var rolesToProto = map[apikey.Role]gantryv1.Role{
	apikey.RoleReader: gantryv1.Role_ROLE_READER,
	apikey.RoleWriter: gantryv1.Role_ROLE_WRITER,
	apikey.RoleAdmin:  gantryv1.Role_ROLE_ADMIN,
}

func roleToProto(r apikey.Role) gantryv1.Role { return rolesToProto[r] }

func roleFromProto(r gantryv1.Role) (apikey.Role, bool) {
	for role, p := range rolesToProto {
		if p == r {
			return role, true
		}
	}
	return "", false
}
