package auth

import (
	"log/slog"
	"net/http"
)

// Middleware returns the plain net/http counterpart of NewInterceptor, for
// endpoints that are not Connect procedures: it requires "Authorization:
// Bearer <token>", answers 401 (with WWW-Authenticate: Bearer and the same
// generic message) when the token is missing or refused, 503 when it cannot
// be checked, and otherwise calls next with the Principal in the request's
// context. log may be nil (discard).
func Middleware(v Verifier, log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, unavailable, err := authenticate(r.Context(), v, log, r.Method+" "+r.URL.Path, r.Header)
			switch {
			case err == nil:
				next.ServeHTTP(w, r.WithContext(ctx))
			case unavailable:
				http.Error(w, unavailableMessage, http.StatusServiceUnavailable)
			default:
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, unauthenticatedMessage, http.StatusUnauthorized)
			}
		})
	}
}
