package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/server/commands"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service(t, nil)
	ctx := ctxFor(t)
	admin := commands.Caller{Actor: "user:ops", Role: apikey.RoleAdmin}

	id, key, err := s.CreateAPIKey(ctx, admin, "ci", apikey.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	gotID, secret, ok := apikey.ParseKey(key)
	if !ok || gotID != id {
		t.Fatalf("key %q does not parse to its id %s", key, id)
	}
	st, err := aggregate.Load(ctx, e.cfg.Aggregates, aggregate.APIKey, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Live() || st.Name() != "ci" || st.Role() != apikey.RoleWriter || st.CreatedBy() != "user:ops" || !st.SecretMatches(secret) {
		t.Errorf("key state %+v", st)
	}
	// Only the hash is stored.
	var hits int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%'`, secret).Scan(&hits); err != nil {
		t.Fatal(err)
	}
	if hits != 0 {
		t.Errorf("the secret is stored in %d events", hits)
	}
	if n := e.count(t, "APIKeyCreated"); n != 1 {
		t.Errorf("%d APIKeyCreated events, want 1", n)
	}

	// Names are unique among live keys, whatever their case.
	if _, _, err := s.CreateAPIKey(ctx, admin, "CI", apikey.RoleReader); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Errorf("second key named CI: %v, want already exists", err)
	}
	for name, role := range map[string]apikey.Role{"": apikey.RoleReader, "my key": apikey.RoleReader, "ak_x": apikey.RoleReader, "ok": "root", "fine": ""} {
		var ve *domain.ValidationError
		if _, _, err := s.CreateAPIKey(ctx, admin, name, role); !errors.As(err, &ve) {
			t.Errorf("CreateAPIKey(%q, %q): %v, want a validation error", name, role, err)
		}
	}

	// Revoke by name: the name is free again, the key is not live.
	if got, err := s.RevokeAPIKey(ctx, admin, "Ci"); err != nil || got != id {
		t.Fatalf("revoke by name: %q, %v", got, err)
	}
	st, err = aggregate.Load(ctx, e.cfg.Aggregates, aggregate.APIKey, id)
	if err != nil || st.Live() || st.RevokedBy() != "user:ops" || st.SecretMatches(secret) {
		t.Errorf("revoked key %+v, %v", st, err)
	}
	if _, err := s.RevokeAPIKey(ctx, admin, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoking twice by id: %v, want not found", err)
	}
	if _, err := s.RevokeAPIKey(ctx, admin, "ci"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoking a freed name: %v, want not found", err)
	}
	newID, _, err := s.CreateAPIKey(ctx, admin, "ci", apikey.RoleReader)
	if err != nil || newID == id {
		t.Fatalf("a new key under the freed name: %q, %v", newID, err)
	}
	if _, err := s.RevokeAPIKey(ctx, admin, "ak_nobody"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoking an unknown id: %v, want not found", err)
	}
	if _, err := s.RevokeAPIKey(ctx, admin, ""); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("revoking nothing: %v, want invalid", err)
	}
}

// Two servers creating the first key under one name at once make one key:
// the name reservation's expected version decides.
func TestConcurrentAPIKeyCreatesMakeOneKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxFor(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		s := e.service(t, nil) // one service per "replica"
		wg.Go(func() {
			_, _, errs[i] = s.CreateAPIKey(ctx, commands.Caller{Actor: "system:server"}, "admin", apikey.RoleAdmin)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrAlreadyExists) || !strings.Contains(err.Error(), `API key name "admin" is taken`):
			t.Errorf("losing create: %v, want already exists", err)
		}
	}
	if won != 1 || e.count(t, "APIKeyCreated") != 1 {
		t.Errorf("%d creates won, %d keys stored; want exactly one", won, e.count(t, "APIKeyCreated"))
	}
}
