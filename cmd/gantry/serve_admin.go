package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/server/commands"
)

// firstAdminKeyName is the name of the admin key a server creates when
// there is none; its callers are recorded as "user:admin".
const firstAdminKeyName = "admin"

// bootstrapTimeout bounds the wait for the API key read model at start.
const bootstrapTimeout = 30 * time.Second

// adminKeys is what the first start needs of the command layer.
type adminKeys interface {
	CreateAPIKey(ctx context.Context, c commands.Caller, name string, role apikey.Role) (keyID, key string, err error)
	RevokeAPIKey(ctx context.Context, c commands.Caller, ref string) (string, error)
}

// keyCounter counts the live API keys of a role; *projections.Queries is one.
type keyCounter interface {
	CountLiveAPIKeys(ctx context.Context, role apikey.Role) (int, error)
}

// bootstrap is what the first admin key is made with.
type bootstrap struct {
	keys     adminKeys
	sessions *auth.Sessions
	queries  keyCounter
	waiter   *projections.Waiter
	store    *eventstore.Store
	log      *slog.Logger
}

// firstAdminKey gives an operator of `gantry server` a way in: when no
// admin API key is live (a new installation, or every admin key revoked),
// it creates the admin key "admin" and writes it to path (mode 0600); the
// key is never logged or printed. Replicas starting at once make one key
// between them: its name reservation lets one create win. Without path it
// only says, when no admin key is live, how to make one. It returns the
// start-up line, if any.
func (b bootstrap) firstAdminKey(ctx context.Context, path string) (component, error) {
	admins, err := b.liveAdminKeys(ctx)
	if err != nil {
		// Not knowing is no reason to stop serving: the next start checks again.
		b.log.Warn("could not check for admin API keys; none created", "err", err)
		return component{"login", "could not check for admin API keys (see the log); none created"}, nil
	}
	switch {
	case admins > 0 && path != "":
		return component{"login", fmt.Sprintf("admin API keys exist (%d live): none created, %s left as it is", admins, path)}, nil
	case admins > 0:
		return component{}, nil
	case path == "":
		b.log.Warn("no admin API key exists: start a server with --admin-key-file to create one")
		return component{"login", "no admin API key exists: start a server with --admin-key-file PATH (or GANTRY_ADMIN_KEY_FILE) to create one"}, nil
	}
	caller := commands.Caller{Actor: "system:server"}
	keyID, key, err := b.keys.CreateAPIKey(ctx, caller, firstAdminKeyName, apikey.RoleAdmin)
	if errors.Is(err, commands.ErrNotCaughtUp) {
		err = nil // the key exists; only the read models lag
	}
	if errors.Is(err, domain.ErrAlreadyExists) {
		if admins, cerr := b.liveAdminKeys(ctx); cerr != nil || admins == 0 {
			return component{}, fmt.Errorf("create the first admin key: a key that is no admin's holds the name %q: %w", firstAdminKeyName, err)
		}
		return component{"login", "another server created the admin key at the same time: its --admin-key-file holds it"}, nil
	}
	if err != nil {
		return component{}, fmt.Errorf("create the first admin key: %w", err)
	}
	if err := auth.SaveAPIKey(path, key); err != nil {
		// A key nobody holds must not stay live: revoke it, so that the
		// next start with a writable path makes another.
		if _, rerr := b.keys.RevokeAPIKey(ctx, caller, keyID); rerr != nil {
			return component{}, fmt.Errorf("--admin-key-file: %w (and revoking the unsaved key %s failed: %v)", err, keyID, rerr)
		}
		return component{}, fmt.Errorf("--admin-key-file: %w (the key was revoked; fix the path and start again)", err)
	}
	b.log.Info("admin API key created", "key_id", keyID, "path", path)
	return component{"login", fmt.Sprintf("admin API key (%s) written to %s: gantry login --server URL --key-file %s", keyID, path, path)}, nil
}

// liveAdminKeys counts the live admin API keys once the read model holds
// every event committed before the call.
func (b bootstrap) liveAdminKeys(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	head, err := b.store.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("look for API keys: %w", err)
	}
	if err := b.waiter.WaitFor(ctx, head, projections.APIKeysName); err != nil {
		return 0, fmt.Errorf("look for API keys: the read model did not catch up: %w", err)
	}
	n, err := b.queries.CountLiveAPIKeys(ctx, apikey.RoleAdmin)
	if err != nil {
		return 0, fmt.Errorf("look for API keys: %w", err)
	}
	return n, nil
}

// devAdmin makes sure the CLI's credentials file at path holds a live admin
// API key of this server, for `gantry dev`: a key already there is kept
// (the file is rewritten only if the server URL changed); otherwise (no
// file, a broken one, another server's key, a revoked or non-admin key) a
// new admin key is created and written with the server's URL (0600,
// parents 0700). The key is never printed: the line says where it is.
func (b bootstrap) devAdmin(ctx context.Context, path, serverURL string) (component, error) {
	if c, err := auth.LoadCredentials(path); err == nil {
		s, err := b.sessions.Exchange(ctx, c.Token)
		switch {
		case err == nil && s.Principal.IsAdmin():
			if c.Server != serverURL {
				if err := auth.SaveCredentials(path, auth.Credentials{Server: serverURL, Token: c.Token}); err != nil {
					return component{}, fmt.Errorf("admin key: %w", err)
				}
			}
			return devAdminLine("kept", path), nil
		case err != nil && !errors.Is(err, auth.ErrInvalidAPIKey):
			return component{}, fmt.Errorf("admin key: check the key in %s: %w", path, err)
		}
	}
	key, err := b.newDevAdminKey(ctx)
	if err != nil {
		return component{}, err
	}
	if err := auth.SaveCredentials(path, auth.Credentials{Server: serverURL, Token: key}); err != nil {
		return component{}, fmt.Errorf("admin key: %w", err)
	}
	return devAdminLine("created", path), nil
}

func devAdminLine(state, path string) component {
	return component{"login", fmt.Sprintf("admin API key %s in %s: the CLI uses it by default", state, path)}
}

// newDevAdminKey creates an admin key named "admin", or "admin-2",
// "admin-3"… when earlier ones are taken (their holders' files were lost).
func (b bootstrap) newDevAdminKey(ctx context.Context) (string, error) {
	const tries = 100
	for i := 1; i <= tries; i++ {
		name := firstAdminKeyName
		if i > 1 {
			name = fmt.Sprintf("%s-%d", firstAdminKeyName, i)
		}
		_, key, err := b.keys.CreateAPIKey(ctx, commands.Caller{Actor: "system:dev"}, name, apikey.RoleAdmin)
		if errors.Is(err, commands.ErrNotCaughtUp) {
			err = nil // the key exists; only the read models lag
		}
		if !errors.Is(err, domain.ErrAlreadyExists) {
			if err != nil {
				return "", fmt.Errorf("create an admin key: %w", err)
			}
			return key, nil
		}
	}
	return "", fmt.Errorf("create an admin key: the names %s to %s-%d are all taken; revoke some", firstAdminKeyName, firstAdminKeyName, tries)
}
