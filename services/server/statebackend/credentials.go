package statebackend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
)

// Access is what credentials allow.
type Access string

// Access levels.
const (
	// AccessRead allows GET, and LOCK and UNLOCK: terraform plan takes the
	// lock by default, and a lock only keeps writers out.
	AccessRead Access = "read"
	// AccessReadWrite also allows POST (write) and DELETE.
	AccessReadWrite Access = "read-write"
)

// AccessFor says what credentials minted for phase allow, and whether the
// phase may touch state at all. INITIALIZING reads (terraform init GETs the
// state once to set up the backend); PLANNING reads and locks; APPLYING
// (DESTROYING for a destroy run) and PERFORMING (a task's command) also
// write.
func AccessFor(phase run.Phase) (Access, bool) {
	switch phase {
	case run.PhaseInitializing, run.PhasePlanning:
		return AccessRead, true
	case run.PhaseApplying, run.PhaseDestroying, run.PhasePerforming:
		return AccessReadWrite, true
	}
	return "", false
}

// Credentials are the http backend's basic-auth username and password for
// one run phase. They are valid only while the run is in that phase. The
// password is a secret: String, GoString and LogValue leave it out.
type Credentials struct {
	Username string
	Password string
	StackID  string
	RunID    string
	Phase    run.Phase
	Access   Access
}

// String describes the credentials without the password.
func (c Credentials) String() string {
	return fmt.Sprintf("state credentials %s (stack %s, run %s, %s, %s)", c.Username, c.StackID, c.RunID, c.Phase, c.Access)
}

// GoString is String, so %#v does not print the password either.
func (c Credentials) GoString() string { return c.String() }

// LogValue logs the credentials without the password.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.String("stack_id", c.StackID),
		slog.String("run_id", c.RunID), slog.String("phase", string(c.Phase)), slog.String("access", string(c.Access)))
}

// Env returns the credentials as the environment variables terraform's http
// backend reads (TF_HTTP_USERNAME, TF_HTTP_PASSWORD): a worker can pass them
// this way instead of writing them into the override file, so that new
// credentials for the next phase need no `terraform init -reconfigure`.
func (c Credentials) Env() []string {
	return []string{"TF_HTTP_USERNAME=" + c.Username, "TF_HTTP_PASSWORD=" + c.Password}
}

// ErrNotManaged: the stack does not let Gantry manage its state.
var ErrNotManaged = errors.New("stack does not use managed state")

// usernamePrefix marks state backend usernames in logs.
const usernamePrefix = "gst_"

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Mint creates credentials for run runID of stack stackID in phase. The stack
// must exist and use managed state, the run must belong to it and not have
// ended, and the phase must be one that touches state and that the run's
// type goes through. The password is random (256 bits) and only its SHA-256
// is stored.
func (s *Service) Mint(ctx context.Context, stackID, runID string, phase run.Phase) (Credentials, error) {
	var p domain.Problems
	p.Check(ids.Stack.Validate("stack_id", stackID))
	p.Check(ids.Run.Validate("run_id", runID))
	access, ok := AccessFor(phase)
	if !ok {
		p.Addf("phase", "%q does not touch state: mint credentials for %s, %s, %s, %s or %s", phase,
			run.PhaseInitializing, run.PhasePlanning, run.PhaseApplying, run.PhaseDestroying, run.PhasePerforming)
	}
	if err := p.Err(); err != nil {
		return Credentials{}, err
	}
	st, err := s.loadStack(ctx, stackID)
	if err != nil {
		return Credentials{}, err
	}
	if !st.Exists() {
		return Credentials{}, fmt.Errorf("mint state credentials: stack %s: %w", stackID, domain.ErrNotFound)
	}
	if !st.ManagedState() {
		return Credentials{}, fmt.Errorf("mint state credentials: stack %s: %w", stackID, ErrNotManaged)
	}
	r, err := s.loadRun(ctx, runID)
	if err != nil {
		return Credentials{}, err
	}
	switch {
	case !r.Exists():
		return Credentials{}, fmt.Errorf("mint state credentials: run %s: %w", runID, domain.ErrNotFound)
	case r.StackID() != stackID:
		return Credentials{}, &domain.ValidationError{Field: "run_id", Problem: fmt.Sprintf("run %s belongs to stack %s, not %s", runID, r.StackID(), stackID)}
	case r.IsTerminal():
		return Credentials{}, &domain.ValidationError{Field: "run_id", Problem: fmt.Sprintf("run %s has ended (%s)", runID, r.Status())}
	case phase == run.PhasePerforming && r.Type() != run.Task,
		phase == run.PhasePlanning && r.Type() == run.Task,
		phase.Applies() && (r.Type() != run.Tracked || phase != r.ApplyPhase()):
		return Credentials{}, &domain.ValidationError{Field: "phase", Problem: fmt.Sprintf("a %s run has no %s phase", r.Type(), phase)}
	}
	user := make([]byte, 16)
	secret := make([]byte, 32)
	_, _ = rand.Read(user) // crypto/rand.Read never fails
	_, _ = rand.Read(secret)
	c := Credentials{
		Username: usernamePrefix + lowerBase32.EncodeToString(user),
		Password: base64.RawURLEncoding.EncodeToString(secret),
		StackID:  stackID, RunID: runID, Phase: phase, Access: access,
	}
	hash := sha256.Sum256([]byte(c.Password))
	if _, err := s.db.Exec(ctx, `INSERT INTO state_credentials (username, password_sha256, stack_id, run_id, phase, access)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.Username, hash[:], c.StackID, c.RunID, string(c.Phase), string(c.Access)); err != nil {
		return Credentials{}, fmt.Errorf("mint state credentials for run %s: %w", runID, err)
	}
	return c, nil
}

// errUnauthenticated: no credentials, or wrong ones. The response never says which.
var errUnauthenticated = errors.New("state backend: missing or wrong credentials")

// dummyHash is compared against when the username is unknown, so that a
// wrong username costs as much time as a wrong password.
var dummyHash = sha256.Sum256([]byte("no such user"))

// authenticate returns the credentials a username and password belong to.
// The returned Credentials carry no password.
func (s *Service) authenticate(ctx context.Context, username, password string) (Credentials, error) {
	if !strings.HasPrefix(username, usernamePrefix) || len(username) > 64 || len(password) > 128 {
		return Credentials{}, errUnauthenticated
	}
	got := sha256.Sum256([]byte(password))
	row, ok := s.creds.get(username)
	if !ok {
		var phase, access string
		err := s.db.QueryRow(ctx, `SELECT password_sha256, stack_id, run_id, phase, access FROM state_credentials WHERE username = $1`, username).
			Scan(&row.hash, &row.c.StackID, &row.c.RunID, &phase, &access)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			subtle.ConstantTimeCompare(got[:], dummyHash[:])
			return Credentials{}, errUnauthenticated
		case err != nil:
			return Credentials{}, fmt.Errorf("look up state credentials: %w", err)
		}
		row.c.Username, row.c.Phase, row.c.Access = username, run.Phase(phase), Access(access)
		s.creds.put(username, row)
	}
	if subtle.ConstantTimeCompare(got[:], row.hash) != 1 {
		return Credentials{}, errUnauthenticated
	}
	return row.c, nil
}

// maxCachedCredentials bounds the credentials cache.
const maxCachedCredentials = 10000

// credCache keeps credential rows by username. Rows never change once
// minted, so a cached row is as good as the table's; whether credentials
// still work depends on their run, which is checked on every request.
type credCache struct {
	mu   sync.Mutex
	rows map[string]credRow
}

type credRow struct {
	hash []byte // SHA-256 of the password
	c    Credentials
}

func (c *credCache) get(username string) (credRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rows[username]
	return r, ok
}

func (c *credCache) put(username string, r credRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = map[string]credRow{}
	}
	if len(c.rows) >= maxCachedCredentials {
		for k := range c.rows {
			delete(c.rows, k)
			break
		}
	}
	c.rows[username] = r
}
