package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/server/commands"
)

// VCSCommands changes integrations and deliveries; *commands.Service satisfies it.
type VCSCommands interface {
	AddVCSIntegration(ctx context.Context, c commands.Caller, in commands.VCSIntegration) (string, error)
	ReplayDelivery(ctx context.Context, c commands.Caller, id string) error
}

// VCSQueries reads integrations and deliveries; *projections.Queries satisfies it.
type VCSQueries interface {
	ListVCSIntegrations(ctx context.Context) ([]projections.VCSIntegrationView, error)
	ListDeliveries(ctx context.Context, status string, limit int) ([]projections.DeliveryView, error)
	GetDelivery(ctx context.Context, id string) (projections.DeliveryView, error)
}

// VCSService serves gantry.v1.VCSService.
type VCSService struct {
	handlerBase
	cmds    VCSCommands
	queries VCSQueries
}

var _ gantryv1connect.VCSServiceHandler = (*VCSService)(nil)

// NewVCSService returns the VCS service; log may be nil.
func NewVCSService(cmds VCSCommands, queries VCSQueries, identify Identify, log *slog.Logger) *VCSService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VCSService{handlerBase: handlerBase{identify: identify, log: log.With("service", gantryv1connect.VCSServiceName)}, cmds: cmds, queries: queries}
}

// Route returns the service's Connect handler and its path.
func (s *VCSService) Route(opts ...connect.HandlerOption) Route {
	path, h := gantryv1connect.NewVCSServiceHandler(s, opts...)
	return Route{Path: path, Handler: h}
}

// WebhookPath is the path of an integration's webhook endpoint.
func WebhookPath(provider, name string) string { return "/webhooks/" + provider + "/" + name }

// AddVCSIntegration adds an integration.
func (s *VCSService) AddVCSIntegration(ctx context.Context, req *connect.Request[gantryv1.AddVCSIntegrationRequest]) (*connect.Response[gantryv1.AddVCSIntegrationResponse], error) {
	m := req.Msg
	var provider vcs.Provider
	switch m.GetProvider() {
	case gantryv1.VCSProvider_VCS_PROVIDER_GITHUB:
		provider = vcs.GitHub
	case gantryv1.VCSProvider_VCS_PROVIDER_GITLAB:
		provider = vcs.GitLab
	default:
		return nil, s.fail(&invalidArgumentError{field: "provider", reason: "must be github or gitlab"})
	}
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	id, err := s.cmds.AddVCSIntegration(ctx, caller, commands.VCSIntegration{Name: m.GetName(), Provider: provider, APIURL: m.GetApiUrl(),
		WebhookSecret: m.GetWebhookSecret(), Token: m.GetToken(), SSHKey: m.GetSshKey()})
	if err != nil {
		return nil, s.fail(err)
	}
	list, err := s.queries.ListVCSIntegrations(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	for _, v := range list {
		if v.ID == id {
			return connect.NewResponse(&gantryv1.AddVCSIntegrationResponse{Integration: integrationToProto(v)}), nil
		}
	}
	return connect.NewResponse(&gantryv1.AddVCSIntegrationResponse{Integration: &gantryv1.VCSIntegration{Id: id, Name: m.GetName()}}), nil
}

// ListVCSIntegrations lists the integrations.
func (s *VCSService) ListVCSIntegrations(ctx context.Context, _ *connect.Request[gantryv1.ListVCSIntegrationsRequest]) (*connect.Response[gantryv1.ListVCSIntegrationsResponse], error) {
	list, err := s.queries.ListVCSIntegrations(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListVCSIntegrationsResponse{}
	for _, v := range list {
		out.Integrations = append(out.Integrations, integrationToProto(v))
	}
	return connect.NewResponse(out), nil
}

// ListDeliveries lists the newest deliveries.
func (s *VCSService) ListDeliveries(ctx context.Context, req *connect.Request[gantryv1.ListDeliveriesRequest]) (*connect.Response[gantryv1.ListDeliveriesResponse], error) {
	if n := req.Msg.GetLimit(); n < 0 || n > projections.MaxPageSize {
		return nil, s.fail(&invalidArgumentError{field: "limit", reason: "must be between 0 (the default) and 500"})
	}
	status := ""
	switch req.Msg.GetStatus() {
	case gantryv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED:
	case gantryv1.DeliveryStatus_DELIVERY_STATUS_PENDING:
		status = string(delivery.Pending)
	case gantryv1.DeliveryStatus_DELIVERY_STATUS_HANDLED:
		status = string(delivery.Handled)
	case gantryv1.DeliveryStatus_DELIVERY_STATUS_IGNORED:
		status = string(delivery.Ignored)
	case gantryv1.DeliveryStatus_DELIVERY_STATUS_POISONED:
		status = string(delivery.Poisoned)
	default:
		return nil, s.fail(&invalidArgumentError{field: "status", reason: "unknown status"})
	}
	list, err := s.queries.ListDeliveries(ctx, status, int(req.Msg.GetLimit()))
	if err != nil {
		return nil, s.fail(err)
	}
	out := &gantryv1.ListDeliveriesResponse{}
	for _, v := range list {
		out.Deliveries = append(out.Deliveries, deliveryToProto(v))
	}
	return connect.NewResponse(out), nil
}

// ReplayDelivery replays a poisoned or ignored delivery.
func (s *VCSService) ReplayDelivery(ctx context.Context, req *connect.Request[gantryv1.ReplayDeliveryRequest]) (*connect.Response[gantryv1.ReplayDeliveryResponse], error) {
	ctx, caller, err := s.command(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	if err := s.cmds.ReplayDelivery(ctx, caller, req.Msg.GetDelivery()); err != nil {
		return nil, s.fail(err)
	}
	v, err := s.queries.GetDelivery(ctx, req.Msg.GetDelivery())
	if err != nil {
		return nil, s.fail(err)
	}
	return connect.NewResponse(&gantryv1.ReplayDeliveryResponse{Delivery: deliveryToProto(v)}), nil
}

func integrationToProto(v projections.VCSIntegrationView) *gantryv1.VCSIntegration {
	p := gantryv1.VCSProvider_VCS_PROVIDER_GITHUB
	if v.Provider == string(vcs.GitLab) {
		p = gantryv1.VCSProvider_VCS_PROVIDER_GITLAB
	}
	return &gantryv1.VCSIntegration{Id: v.ID, Name: v.Name, Provider: p, ApiUrl: v.APIURL, HasToken: v.HasToken, HasSshKey: v.HasSSHKey,
		CreatedAt: timestamppb.New(v.CreatedAt), WebhookPath: WebhookPath(v.Provider, v.Name)}
}

func deliveryToProto(v projections.DeliveryView) *gantryv1.Delivery {
	status := map[string]gantryv1.DeliveryStatus{
		string(delivery.Pending): gantryv1.DeliveryStatus_DELIVERY_STATUS_PENDING, string(delivery.Handled): gantryv1.DeliveryStatus_DELIVERY_STATUS_HANDLED,
		string(delivery.Ignored): gantryv1.DeliveryStatus_DELIVERY_STATUS_IGNORED, string(delivery.Poisoned): gantryv1.DeliveryStatus_DELIVERY_STATUS_POISONED,
	}[v.Status]
	return &gantryv1.Delivery{Id: v.ID, IntegrationId: v.IntegrationID, Event: v.Event, ExternalId: v.ExternalID, Status: status, Reason: v.Reason,
		RunIds: v.RunIDs, Attempts: int32(min(v.Attempts, 1<<30)), ReceivedAt: timestamppb.New(v.ReceivedAt), UpdatedAt: timestamppb.New(v.UpdatedAt)}
}
