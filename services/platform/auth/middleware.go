package auth

import (
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

// Middleware returns the net/http counterpart of NewInterceptor: it
// requires "Authorization: Bearer <token>" from the headers alone, before
// anything reads the request's body, and otherwise calls next with the
// Principal in the request's context. A missing or refused token is
// answered 401 (with WWW-Authenticate: Bearer and the same generic
// message), a token that cannot be checked 503; a Connect, gRPC or
// gRPC-Web call gets them as the errors NewInterceptor returns
// (Unauthenticated, Unavailable), in its protocol. Put it in front of
// Connect handlers: they read a unary call's whole body before any
// interceptor runs, so an interceptor alone lets a caller without a token
// make the server read (and hold) whatever it sends. log may be nil
// (discard).
func Middleware(v Verifier, log *slog.Logger) func(http.Handler) http.Handler {
	errs := connect.NewErrorWriter(connect.WithRequireConnectProtocolHeader())
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, unavailable, err := authenticate(r.Context(), v, log, r.Method+" "+r.URL.Path, r.Header)
			switch {
			case err == nil:
				next.ServeHTTP(w, r.WithContext(ctx))
			case errs.IsSupported(r):
				code, msg := connect.CodeUnauthenticated, unauthenticatedMessage
				if unavailable {
					code, msg = connect.CodeUnavailable, unavailableMessage
				} else {
					w.Header().Set("WWW-Authenticate", "Bearer")
				}
				_ = errs.Write(w, r, connect.NewError(code, errors.New(msg)))
			case unavailable:
				http.Error(w, unavailableMessage, http.StatusServiceUnavailable)
			default:
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, unauthenticatedMessage, http.StatusUnauthorized)
			}
		})
	}
}
