package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// apiKeyKind names API keys in name reservation messages.
const apiKeyKind = "API key"

// ResolveAPIKey returns the id of the key ref names: a key id ("ak_…",
// returned as is) or the name of a live key (looked up,
// case-insensitively). An unknown name is domain.ErrNotFound.
func (s *Service) ResolveAPIKey(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", &domain.ValidationError{Field: "api_key", Problem: "must not be empty: give an API key id or name"}
	}
	if ids.APIKey.Validate("api_key", ref) == nil {
		return ref, nil
	}
	owner, err := s.nameOwner(ctx, aggregate.APIKeyName, ref)
	if err != nil {
		return "", err
	}
	if owner == "" {
		return "", fmt.Errorf("API key %q: %w", ref, domain.ErrNotFound)
	}
	return owner, nil
}

// CreateAPIKey creates a key named name with role: a fresh random secret
// is made, only its hash is stored, and the key and its name reservation
// are appended together. It returns the key id and the key the caller
// holds (apikey.FormatKey), which cannot be shown again: also with an
// error matching ErrNotCaughtUp, since the key exists then.
func (s *Service) CreateAPIKey(ctx context.Context, c Caller, name string, role apikey.Role) (keyID, key string, err error) {
	if keyID, err = newID(ids.APIKey); err != nil {
		return "", "", err
	}
	raw := make([]byte, apikey.SecretLength/2)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("new API key secret: %w", err)
	}
	secret := hex.EncodeToString(raw)
	at := s.now()
	_, err = s.execute(ctx, "create API key", func(ctx context.Context, u *aggregate.Unit) error {
		k, err := aggregate.Get(ctx, u, aggregate.APIKey, keyID)
		if err != nil {
			return err
		}
		if _, err := k.Do(apikey.Create{KeyID: keyID, Name: name, Role: role, SecretHash: apikey.HashSecret(secret), Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return reserveName(ctx, u, aggregate.APIKeyName, apiKeyKind, name, keyID, c.Actor, at)
	})
	if err != nil && !errors.Is(err, ErrNotCaughtUp) {
		return "", "", err
	}
	s.log.InfoContext(ctx, "API key created", "key_id", keyID, "name", name, "role", string(role), "actor", c.Actor)
	return keyID, apikey.FormatKey(keyID, secret), err
}

// RevokeAPIKey revokes the key ref names (an id or a live key's name) and
// frees its name, in one append. Every server refuses the key, and its
// sessions, from its next request on. It returns the key id.
func (s *Service) RevokeAPIKey(ctx context.Context, c Caller, ref string) (string, error) {
	keyID, err := s.ResolveAPIKey(ctx, ref)
	if err != nil {
		return "", err
	}
	at := s.now()
	_, err = s.execute(ctx, "revoke API key", func(ctx context.Context, u *aggregate.Unit) error {
		k, err := aggregate.Get(ctx, u, aggregate.APIKey, keyID)
		if err != nil {
			return err
		}
		if _, err := k.Do(apikey.Revoke{Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return releaseName(ctx, u, aggregate.APIKeyName, k.State().Name(), keyID, c.Actor, at)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "API key revoked", "key_id", keyID, "actor", c.Actor)
	return keyID, nil
}
