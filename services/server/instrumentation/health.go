package instrumentation

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// HealthChecker answers the API's grpc.health.v1 checks with the process's
// readiness: SERVING when every dependency answers, NOT_SERVING otherwise.
// The empty service name is the whole server; the names in services are
// the API's services, which share its dependencies.
type HealthChecker struct {
	readiness *Readiness
	services  map[string]bool
}

// NewHealthChecker returns the checker of the API's services.
func NewHealthChecker(r *Readiness, services ...string) *HealthChecker {
	known := map[string]bool{"": true}
	for _, s := range services {
		known[s] = true
	}
	return &HealthChecker{readiness: r, services: known}
}

// Check implements grpchealth.Checker.
func (h *HealthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if !h.services[req.Service] {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if err := h.readiness.Ready(ctx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}
