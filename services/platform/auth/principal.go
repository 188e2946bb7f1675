package auth

import (
	"context"

	"github.com/gantryhq/gantry/domain/apikey"
)

// Principal is who made a request: the live API key its session token was
// opened with.
type Principal struct {
	Subject   string      // the API key's name
	Role      apikey.Role // what the key may do
	KeyID     string      // the API key's id ("ak_…")
	SessionID string      // the session token's id (jti), for audit
}

// Actor returns the principal as commands and events record it: "user:<subject>".
func (p Principal) Actor() string { return "user:" + p.Subject }

// IsAdmin reports whether the principal may administer Gantry.
func (p Principal) IsAdmin() bool { return p.Role == apikey.RoleAdmin }

type principalKey struct{}

// WithPrincipal returns ctx carrying p, as the interceptor and the
// middleware do after verifying a token.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of the request ctx belongs to, and
// false outside an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
