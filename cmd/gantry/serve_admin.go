package main

import (
	"context"
	"fmt"

	"github.com/gantryhq/gantry/services/platform/auth"
)

// ensureAdmin makes sure the credentials file at path holds an admin token
// of this server (creating one on first start) and returns the one line
// that tells the operator where it is. The token itself is never printed:
// the file (mode 0600) is where the CLI finds it by default, and where an
// operator reads it for curl.
func ensureAdmin(ctx context.Context, keys *serverKeys, path, serverURL string) (component, error) {
	_, created, err := auth.EnsureAdminToken(ctx, keys.issuer, path, serverURL)
	if err != nil {
		return component{}, err
	}
	state := "kept"
	if created {
		state = "created"
	}
	return component{"login", fmt.Sprintf("admin token %s in %s: the CLI uses it by default (curl: -H \"Authorization: Bearer $(jq -r .token %s)\")", state, path, path)}, nil
}
