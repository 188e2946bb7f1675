package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

// interceptor authenticates and authorizes every procedure it handles.
type interceptor struct {
	v      Verifier
	policy Policy
	log    *slog.Logger
}

// NewInterceptor returns a Connect interceptor for handlers that checks
// every procedure, unary and streaming, against policy: an Anonymous
// procedure passes as it is; any other needs "Authorization: Bearer
// <session token>" from a principal whose role is at least the one policy
// names, and gets the Principal in its context (PrincipalFrom).
//
// A missing or refused token is CodeUnauthenticated with the message
// "missing or invalid token" whatever the reason, which is logged at debug
// level; a verifier failure is CodeUnavailable; a role too low is
// CodePermissionDenied naming the role needed; a procedure missing from
// policy is CodePermissionDenied for everyone. log may be nil (discard). On
// the client side it does nothing.
func NewInterceptor(v Verifier, policy Policy, log *slog.Logger) (connect.Interceptor, error) {
	if v == nil {
		return nil, errors.New("auth interceptor: no verifier")
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &interceptor{v: v, policy: policy, log: log}, nil
}

// WrapUnary implements connect.Interceptor.
func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.check(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor; clients pass through.
func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.check(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// check authorizes, and authenticates a call Middleware did not
// authenticate already, mapping failures to the Connect error clients see.
func (i *interceptor) check(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	need, ok := i.policy[procedure]
	if !ok {
		i.log.ErrorContext(ctx, "procedure missing from the role policy: refused", "procedure", procedure)
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s is not in the server's role table: nobody may call it", shortProcedure(procedure)))
	}
	if need == Anonymous {
		return ctx, nil
	}
	if _, ok := PrincipalFrom(ctx); !ok {
		var unavailable bool
		var err error
		ctx, unavailable, err = authenticate(ctx, i.v, i.log, procedure, h)
		switch {
		case err == nil:
		case unavailable:
			return nil, connect.NewError(connect.CodeUnavailable, errors.New(unavailableMessage))
		default:
			cerr := connect.NewError(connect.CodeUnauthenticated, errors.New(unauthenticatedMessage))
			cerr.Meta().Set("WWW-Authenticate", "Bearer")
			return nil, cerr
		}
	}
	p, _ := PrincipalFrom(ctx)
	if err := Authorize(p, procedure, need); err != nil {
		i.log.InfoContext(ctx, "request refused: role too low", "procedure", procedure, "key_id", p.KeyID, "role", string(p.Role), "needs", string(need))
		return nil, connect.NewError(connect.CodePermissionDenied, err)
	}
	return ctx, nil
}
