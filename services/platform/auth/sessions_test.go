package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	s, _ := e.sessions(t)
	ciID, ci := e.createKey(t, "ci", apikey.RoleWriter)
	_, auditor := e.createKey(t, "auditor", apikey.RoleReader)

	sess, err := s.Exchange(ctx, ci)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Principal{Subject: "ci", Role: apikey.RoleWriter, KeyID: ciID}
	if p := sess.Principal; p.Subject != want.Subject || p.Role != want.Role || p.KeyID != want.KeyID || !strings.HasPrefix(p.SessionID, "ses_") {
		t.Errorf("session principal %+v", p)
	}
	if d := time.Until(sess.ExpiresAt); d < auth.SessionTTL-time.Minute || d > auth.SessionTTL+time.Second {
		t.Errorf("session expires in %s, want %s", d, auth.SessionTTL)
	}
	p, err := s.Verify(ctx, sess.Token)
	if err != nil || p != sess.Principal || p.Actor() != "user:ci" || p.IsAdmin() {
		t.Fatalf("Verify = %+v, %v; want %+v", p, err, sess.Principal)
	}
	readerToken := exchange(t, s, auditor)
	if p, err := s.Verify(ctx, readerToken); err != nil || p.Role != apikey.RoleReader || p.Subject != "auditor" {
		t.Fatalf("reader: %+v, %v", p, err)
	}

	// Revoking the key ends its sessions at once and refuses the key.
	e.revokeKey(t, ciID)
	if _, err := s.Verify(ctx, sess.Token); !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("session of a revoked key: %v", err)
	}
	if _, err := s.Exchange(ctx, ci); !errors.Is(err, auth.ErrInvalidAPIKey) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("exchange of a revoked key: %v", err)
	}
	if _, err := s.Verify(ctx, readerToken); err != nil {
		t.Errorf("another key's session after the revocation: %v", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	s, iss := e.sessions(t)
	id, key := e.createKey(t, "ops", apikey.RoleAdmin)
	secret := key[len(id)+1:]
	other := strings.Repeat("0", apikey.SecretLength)
	// A stream of another kind whose id reads as an API key id.
	if _, err := e.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: "ak_0pool"}, eventstore.NoStream,
		workerpool.WorkerPoolCycleRequested{At: t0, Actor: "user:setup"}); err != nil {
		t.Fatal(err)
	}

	for name, k := range map[string]string{
		"empty":             "",
		"garbage":           "hunter2",
		"upper-case":        strings.ToUpper(key),
		"wrong secret":      apikey.FormatKey(id, other),
		"unknown key":       apikey.FormatKey("ak_ffff", secret),
		"a session token":   exchange(t, s, key),
		"secret without id": secret,
		"a pool id":         "wp_x_" + secret,
		"another stream":    apikey.FormatKey("ak_0pool", secret),
	} {
		_, err := s.Exchange(ctx, k)
		if !errors.Is(err, auth.ErrInvalidAPIKey) {
			t.Errorf("%s: %v, want ErrInvalidAPIKey", name, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error holds the secret: %v", name, err)
		}
	}

	// Sessions our key signed for keys that are not there.
	for name, keyID := range map[string]string{"unknown key": "ak_nobody", "another stream": "ak_0pool"} {
		token, _, err := iss.Issue(keyID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, token); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	// A session of another server, which does not hold our keys.
	stranger, _ := newKeyEnv(t).sessions(t)
	if _, err := stranger.Verify(ctx, exchange(t, s, key)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("another server's session: %v", err)
	}
}

func TestSessionsCannotCheckWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	e := newKeyEnv(t)
	s, _ := e.sessions(t)
	_, key := e.createKey(t, "ops", apikey.RoleAdmin)
	token := exchange(t, s, key)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Verify(ctx, token); err == nil || errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify without a database: %v; want an error that is not a refusal", err)
	}
	if _, err := s.Exchange(ctx, key); err == nil || errors.Is(err, auth.ErrInvalidAPIKey) {
		t.Errorf("Exchange without a database: %v; want an error that is not a refusal", err)
	}
}
