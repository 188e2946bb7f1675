package auth

import "context"

// Roles a token can carry.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Principal is who made a request, as their verified token says.
type Principal struct {
	Subject string // the user or API key name
	Role    string // RoleAdmin or RoleUser
	KeyID   string // the token's id (jti), for revocation and audit
}

// Actor returns the principal as commands and events record it: "user:<subject>".
func (p Principal) Actor() string { return "user:" + p.Subject }

// IsAdmin reports whether the principal may administer Gantry.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

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
