package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// AdminSubject is the subject of the admin token `gantry dev` bootstraps.
const AdminSubject = "admin"

// EnsureAdminToken gives `gantry dev` a working admin login for the CLI: if
// the credentials file at path holds an admin token that issuer still
// accepts, it returns that token (rewriting the file only if the server URL
// changed); otherwise it issues an admin token that never expires and
// writes {"server": serverURL, "token": …} to path (0600, parents 0700).
// created reports whether a new token was issued.
func EnsureAdminToken(ctx context.Context, issuer *Issuer, path, serverURL string) (token string, created bool, err error) {
	if serverURL == "" {
		return "", false, errors.New("admin token: no server URL")
	}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		// A file that does not parse, or whose token is not an admin token
		// of this server (another server's, a stale key's), is replaced.
		if c, perr := parseCredentials(path, raw); perr == nil {
			if p, verr := issuer.Verify(ctx, c.Token); verr == nil && p.IsAdmin() {
				if c.Server != serverURL {
					if err := SaveCredentials(path, Credentials{Server: serverURL, Token: c.Token}); err != nil {
						return "", false, fmt.Errorf("admin token: %w", err)
					}
				}
				return c.Token, false, nil
			}
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return "", false, fmt.Errorf("admin token: read credentials: %w", err)
	}
	token, err = issuer.Issue(ctx, AdminSubject, RoleAdmin, 0)
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if err := SaveCredentials(path, Credentials{Server: serverURL, Token: token}); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	return token, true, nil
}
