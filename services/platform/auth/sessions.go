package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// SessionTTL is how long a session token is valid. Short, so that a token
// that leaks is soon useless; revoking its key ends it at once anyway.
const SessionTTL = time.Hour

// ErrInvalidAPIKey is wrapped by every refusal of an API key in Exchange.
// The wrapped reason is for logs; clients only learn that the key was
// refused.
var ErrInvalidAPIKey = errors.New("invalid API key")

// Session is a session token opened with an API key.
type Session struct {
	Token     string
	ExpiresAt time.Time
	Principal Principal
}

// Sessions opens session tokens for API keys and verifies them against the
// keys' current state. It reads the keys through the process's aggregate
// repository, which reads the events appended since its cached state on
// every load: a key revoked through any server replica is refused by every
// replica on the next request, with no cache to expire.
type Sessions struct {
	issuer *Issuer
	aggs   *aggregate.Repository
	ttl    time.Duration
}

// NewSessions returns sessions signed by issuer for the keys in aggs.
func NewSessions(issuer *Issuer, aggs *aggregate.Repository) (*Sessions, error) {
	if issuer == nil || aggs == nil {
		return nil, errors.New("sessions: an issuer and the aggregate repository are required")
	}
	return &Sessions{issuer: issuer, aggs: aggs, ttl: SessionTTL}, nil
}

// Exchange returns a session token for key, an API key as apikey.FormatKey
// makes them. A key that is malformed, unknown, revoked or whose secret is
// wrong is refused with an error wrapping ErrInvalidAPIKey; any other error
// means the key could not be checked. Errors never contain the secret.
func (s *Sessions) Exchange(ctx context.Context, key string) (Session, error) {
	keyID, secret, ok := apikey.ParseKey(key)
	if !ok {
		return Session{}, fmt.Errorf("%w: not an API key (ak_…_<64 hex digits>)", ErrInvalidAPIKey)
	}
	st, err := s.load(ctx, keyID)
	switch {
	case errors.Is(err, aggregate.ErrStreamType):
		return Session{}, fmt.Errorf("%w: %s is not an API key", ErrInvalidAPIKey, keyID)
	case err != nil:
		return Session{}, err
	case !st.Exists():
		return Session{}, fmt.Errorf("%w: no API key %s", ErrInvalidAPIKey, keyID)
	case st.Revoked():
		return Session{}, fmt.Errorf("%w: API key %s was revoked", ErrInvalidAPIKey, keyID)
	case !st.SecretMatches(secret):
		return Session{}, fmt.Errorf("%w: wrong secret for API key %s", ErrInvalidAPIKey, keyID)
	}
	token, c, err := s.issuer.Issue(keyID, s.ttl)
	if err != nil {
		return Session{}, err
	}
	return Session{Token: token, ExpiresAt: c.ExpiresAt, Principal: principalOf(st, c.SessionID)}, nil
}

// Verify implements Verifier: it checks the token's signature and validity
// period, then that its API key is still live, and returns the key as the
// principal (its name and role as they are now).
func (s *Sessions) Verify(ctx context.Context, token string) (Principal, error) {
	c, err := s.issuer.Verify(token)
	if err != nil {
		return Principal{}, err
	}
	st, err := s.load(ctx, c.KeyID)
	switch {
	case errors.Is(err, aggregate.ErrStreamType):
		return Principal{}, refuse("%s is not an API key", c.KeyID)
	case err != nil:
		return Principal{}, err
	case !st.Exists():
		return Principal{}, refuse("no API key %s", c.KeyID)
	case st.Revoked():
		return Principal{}, refuse("API key %s was revoked", c.KeyID)
	}
	return principalOf(st, c.SessionID), nil
}

func (s *Sessions) load(ctx context.Context, keyID string) (apikey.State, error) {
	st, err := aggregate.Load(ctx, s.aggs, aggregate.APIKey, keyID)
	if err != nil {
		return apikey.State{}, fmt.Errorf("check API key %s: %w", keyID, err)
	}
	return st, nil
}

func principalOf(st apikey.State, sessionID string) Principal {
	return Principal{Subject: st.Name(), Role: st.Role(), KeyID: st.ID(), SessionID: sessionID}
}
