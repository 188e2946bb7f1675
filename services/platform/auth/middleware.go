package auth

import (
	"log/slog"
	"net/http"

	"github.com/gantryhq/gantry/domain/apikey"
)

// Middleware returns the plain net/http counterpart of NewInterceptor, for
// endpoints that are not Connect procedures: it requires "Authorization:
// Bearer <session token>" of a principal with at least role need, answers
// 401 (with WWW-Authenticate: Bearer and the same generic message) when the
// token is missing or refused, 503 when it cannot be checked, 403 naming
// the role when the caller's is too low, and otherwise calls next with the
// Principal in the request's context. log may be nil (discard).
func Middleware(v Verifier, need apikey.Role, log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			where := r.Method + " " + r.URL.Path
			ctx, unavailable, err := authenticate(r.Context(), v, log, where, r.Header)
			switch {
			case err == nil:
			case unavailable:
				http.Error(w, unavailableMessage, http.StatusServiceUnavailable)
				return
			default:
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, unauthenticatedMessage, http.StatusUnauthorized)
				return
			}
			p, _ := PrincipalFrom(ctx)
			if err := Authorize(p, where, need); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
