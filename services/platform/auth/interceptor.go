package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

// interceptor requires a valid bearer token on every procedure it handles.
type interceptor struct {
	v   Verifier
	log *slog.Logger
}

// NewInterceptor returns a Connect interceptor for handlers that requires
// "Authorization: Bearer <token>" on every procedure, unary and streaming,
// and puts the caller's Principal in the context (PrincipalFrom). A missing
// or refused token is CodeUnauthenticated with the message "missing or
// invalid token" whatever the reason, which is logged at debug level; a
// verifier failure is CodeUnavailable. log may be nil (discard). On the
// client side it does nothing.
func NewInterceptor(v Verifier, log *slog.Logger) connect.Interceptor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &interceptor{v: v, log: log}
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

// check authenticates and maps failures to the Connect error clients see.
// A call Middleware authenticated already is not checked twice.
func (i *interceptor) check(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	if _, ok := PrincipalFrom(ctx); ok {
		return ctx, nil
	}
	ctx, unavailable, err := authenticate(ctx, i.v, i.log, procedure, h)
	switch {
	case err == nil:
		return ctx, nil
	case unavailable:
		return nil, connect.NewError(connect.CodeUnavailable, errors.New(unavailableMessage))
	}
	cerr := connect.NewError(connect.CodeUnauthenticated, errors.New(unauthenticatedMessage))
	cerr.Meta().Set("WWW-Authenticate", "Bearer")
	return nil, cerr
}
