package auth

import (
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

// Middleware authenticates Connect calls from their headers alone, before
// anything reads the request's body: it requires "Authorization: Bearer
// <token>" unless policy lets anyone call the procedure (Anonymous, such as
// SessionService.CreateSession, whose body carries its own credential), and
// calls next with the Principal in the request's context. A missing or
// refused token is answered as NewInterceptor would (Unauthenticated, with
// WWW-Authenticate: Bearer), a token that cannot be checked Unavailable, in
// the call's protocol (Connect, gRPC or gRPC-Web; plain HTTP gets 401 or
// 503). Put it in front of Connect handlers: they read a unary call's whole
// body before any interceptor runs, so an interceptor alone lets a caller
// without a token make the server read (and hold) whatever it sends. The
// interceptor then finds the caller authenticated and checks the role.
// log may be nil (discard).
func Middleware(v Verifier, policy Policy, log *slog.Logger) func(http.Handler) http.Handler {
	errs := connect.NewErrorWriter()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if need, ok := policy[r.URL.Path]; ok && need == Anonymous {
				next.ServeHTTP(w, r)
				return
			}
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
