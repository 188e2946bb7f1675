package apikey

import (
	"fmt"
	"slices"
	"strings"
)

// Role is what a key may do. Roles are ordered: every role may do what the
// roles below it may.
type Role string

// The roles, lowest first.
const (
	// RoleReader may read everything but secrets.
	RoleReader Role = "reader"
	// RoleWriter may also trigger, confirm, discard, stop and cancel runs,
	// lock stacks and set their environment, and read secrets.
	RoleWriter Role = "writer"
	// RoleAdmin may do everything, worker pools and API keys included.
	RoleAdmin Role = "admin"
)

// Roles returns every role, lowest first.
func Roles() []Role { return []Role{RoleReader, RoleWriter, RoleAdmin} }

// ParseRole returns the role named s (reader, writer or admin, in any case).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		return "", fmt.Errorf("role %q: use %s", s, roleList())
	}
	return r, nil
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return slices.Contains(Roles(), r) }

// AtLeast reports whether r may do what min may. A role that is not one of
// the roles (the zero value included) is below every role.
func (r Role) AtLeast(min Role) bool {
	have, need := slices.Index(Roles(), r), slices.Index(Roles(), min)
	return have >= 0 && need >= 0 && have >= need
}

// CanReadSecrets reports whether a caller with role r may see secret values
// (sensitive outputs, for instance): writers and admins may. A writer can run
// arbitrary Terraform with the stack's secrets anyway, so hiding them from it
// would protect nothing; a reader cannot.
func (r Role) CanReadSecrets() bool { return r.AtLeast(RoleWriter) }

// roleList names the roles for messages: "reader, writer or admin".
func roleList() string {
	rs := Roles()
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
