package auth

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gantryhq/gantry/domain/apikey"
)

// Verifier checks a bearer token. An error wrapping ErrInvalidToken refuses
// the token; any other error means it could not be checked. *Sessions is
// the server's.
type Verifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

// Anonymous, as a procedure's requirement, lets anyone call it without a
// token: only the exchange of an API key for a session token, whose
// request carries its own credential.
const Anonymous apikey.Role = "anonymous"

// Policy is the one table of who may call what: every procedure ("/<service>/<method>")
// mapped to the lowest role that may call it, or Anonymous. A procedure
// that is not in the table is refused to everyone.
type Policy map[string]apikey.Role

// Validate reports every entry whose requirement is neither a role nor
// Anonymous.
func (p Policy) Validate() error {
	var bad []string
	for proc, r := range p {
		if !r.Valid() && r != Anonymous {
			bad = append(bad, fmt.Sprintf("%s: %q", proc, r))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("role policy: not a role: %s", strings.Join(bad, ", "))
	}
	return nil
}

// ErrPermissionDenied is matched by the error of a caller whose role is too
// low for the procedure (a *PermissionError).
var ErrPermissionDenied = errors.New("permission denied")

// PermissionError refuses a caller whose role is too low; it names the role
// needed and the caller's.
type PermissionError struct {
	Procedure string
	Need      apikey.Role
	Subject   string // the caller's API key name
	Have      apikey.Role
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s needs role %s (%s); API key %q has role %s", shortProcedure(e.Procedure), e.Need, roleHolders[e.Need], e.Subject, e.Have)
}

// Is makes errors.Is(err, ErrPermissionDenied) true.
func (e *PermissionError) Is(target error) bool { return target == ErrPermissionDenied }

// roleHolders says who holds each role, for refusals.
var roleHolders = map[apikey.Role]string{
	apikey.RoleReader: "any API key",
	apikey.RoleWriter: "writer and administrator keys",
	apikey.RoleAdmin:  "administrator keys only",
}

// Authorize returns nil if p may call procedure, which needs the role need;
// otherwise a *PermissionError.
func Authorize(p Principal, procedure string, need apikey.Role) error {
	if need == Anonymous || p.Role.AtLeast(need) {
		return nil
	}
	return &PermissionError{Procedure: procedure, Need: need, Subject: p.Subject, Have: p.Role}
}

// shortProcedure drops the package from "/gantry.v1.StackService/CreateStack".
func shortProcedure(procedure string) string {
	s := strings.TrimPrefix(procedure, "/")
	if svc, method, ok := strings.Cut(s, "/"); ok {
		if i := strings.LastIndexByte(svc, '.'); i >= 0 {
			svc = svc[i+1:]
		}
		return svc + "/" + method
	}
	return s
}
