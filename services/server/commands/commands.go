// Package commands is Gantry's command layer: it loads the aggregates a
// command touches through the aggregate repository (eventstore/aggregate),
// lets the domain decide, and appends the resulting events to every stream
// at once with the versions it loaded (optimistic concurrency), retrying a
// bounded number of times when another writer got there first. After a
// successful append it waits until the read models include the change, so
// callers never read stale data right after writing; what workers report
// (RegisterWorker, StartPhase, …) and what Gantry's own components decide
// (AssignRun) does not wait, as nobody reads it back right away.
//
// Ids (prefixed, "stk_…", "run_…", "wp_…") and time (an injected clock) are
// generated here, never in the domain.
package commands

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// Waiter blocks until the read models include everything up to a cursor;
// the projections' waiter satisfies it.
type Waiter interface {
	WaitFor(ctx context.Context, cursor eventstore.Cursor, names ...string) error
}

// Keeper encrypts secret values before they enter a command, and decrypts
// them for the worker pool of the run that needs them; the secrets keeper
// satisfies it.
type Keeper interface {
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// PoolAuthority signs worker pool certificates and makes pool secrets; the
// wiring adapts Gantry's pool CA to it.
type PoolAuthority interface {
	// Certify parses a PEM certificate signing request, checks its key and
	// signs a certificate for the pool. A request it refuses is a
	// *domain.ValidationError on the field "csr".
	Certify(ctx context.Context, poolID string, csrPEM []byte) (workerpool.Certificate, error)
	// NewSecret returns a fresh pool secret and the hash the pool stores.
	NewSecret() (secret, hash string, err error)
	// Token encodes the pool token a pool's launchers start with.
	Token(t PoolToken) (string, error)
}

// PoolToken is what a pool token carries.
type PoolToken struct {
	ServerURL   string
	NATSURL     string
	PoolID      string
	PoolSecret  string
	Certificate string // PEM
}

// BranchResolver finds the commit at the head of a branch; GitResolver
// satisfies it with `git ls-remote`.
type BranchResolver interface {
	// Head returns the full commit id of branch in repo. An unreachable
	// repository or an unknown branch is a *RepositoryError naming
	// repository_url or branch.
	Head(ctx context.Context, repo, branch string) (string, error)
}

// StateImporter prepares the import of a state file into a stack being
// created; *statebackend.Service satisfies it. StageImport validates the
// file, stores its bytes and returns the state stream's first events, which
// CreateStack appends together with the stack's.
type StateImporter interface {
	StageImport(ctx context.Context, stackID string, stateJSON []byte, actor string) (eventstore.Batch, error)
}

// StateContents reads what a stack's managed state holds;
// *statebackend.Service satisfies it.
type StateContents interface {
	// ManagedResources counts the managed resource instances of the
	// stack's current state version (0 without state).
	ManagedResources(ctx context.Context, stackID string) (int, error)
}

// WorkspaceRemover deletes the saved workspace of a run;
// executor.BucketStore satisfies it. Deleting one that does not exist is
// not an error.
type WorkspaceRemover interface {
	Delete(ctx context.Context, runID string) error
}

// Config configures a Service.
type Config struct {
	// Aggregates loads the aggregates commands decide on and appends their
	// events; the process's one repository. Required.
	Aggregates *aggregate.Repository
	// Waiter gives read-your-writes. Required.
	Waiter Waiter
	// Secrets encrypts secret environment variables. Required.
	Secrets Keeper
	// Pools signs pool certificates. Required.
	Pools PoolAuthority
	// State imports state files at stack creation. Default: none, and
	// CreateStack refuses an import.
	State StateImporter
	// OutputsKey is the server's public key that workers seal the values of
	// sensitive outputs to (sent with every job). Default: none, and
	// workers record only the names of sensitive outputs.
	OutputsKey crypto.PublicKey
	// StateCredentials mints the managed-state credentials of run phases
	// (PhaseCredentials). Default: none, and PhaseCredentials returns none.
	StateCredentials StateMinter
	// StateContents counts the resources a managed stack's state holds
	// before DeleteStack. Default: none, and DeleteStack refuses a stack
	// with managed state unless forced, as it cannot tell.
	StateContents StateContents
	// Workspaces deletes the saved workspace of a replanned run
	// (ReplanRun). Default: none, and ReplanRun refuses.
	Workspaces WorkspaceRemover
	// Git resolves branch heads. Default: GitResolver with a 30 s timeout.
	Git BranchResolver
	// ServerURL and NATSURL are what pool tokens send launchers to. Required.
	ServerURL, NATSURL string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the command log. Default: discard.
	Logger *slog.Logger
	// MaxAttempts bounds the tries of a command that keeps meeting
	// concurrent writers. Default: the repository's (5 unless configured).
	MaxAttempts int
	// ReadTimeout bounds the wait for the read models after a write. Default 5 s.
	ReadTimeout time.Duration
	// Projections are the read models waited for after a write; none means all.
	Projections []string
}

// Validate reports every missing or bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.Aggregates == nil {
		errs = append(errs, errors.New("aggregates: required"))
	}
	if c.Waiter == nil {
		errs = append(errs, errors.New("waiter: required"))
	}
	if c.Secrets == nil {
		errs = append(errs, errors.New("secrets: required"))
	}
	if c.Pools == nil {
		errs = append(errs, errors.New("pools: required"))
	}
	if c.ServerURL == "" {
		errs = append(errs, errors.New("server url: required"))
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("nats url: required"))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d: must not be negative", c.MaxAttempts))
	}
	if c.ReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("read timeout %s: must not be negative", c.ReadTimeout))
	}
	return errors.Join(errs...)
}

// defaults applies the defaults of what Service adds to System; NewSystem
// applies the rest (Now, Logger, MaxAttempts).
func (c *Config) defaults() {
	if c.Git == nil {
		c.Git = GitResolver{Timeout: 30 * time.Second}
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 5 * time.Second
	}
}

// Service executes commands. It has the system commands of System too, and
// is safe for concurrent use.
type Service struct {
	*System
	cfg Config
	// outputsKey is cfg.OutputsKey as PEM, as jobs carry it.
	outputsKey string
}

// New returns a Service. The repository's registry must know every domain
// event (eventstore.DomainRegistry), the name reservations' included.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	cfg.defaults()
	sys, err := NewSystem(SystemConfig{Aggregates: cfg.Aggregates, Now: cfg.Now, Logger: cfg.Logger, MaxAttempts: cfg.MaxAttempts})
	if err != nil {
		return nil, err
	}
	var outputsKey string
	if cfg.OutputsKey != nil {
		der, err := x509.MarshalPKIXPublicKey(cfg.OutputsKey)
		if err != nil {
			return nil, fmt.Errorf("commands config: outputs key: %w", err)
		}
		outputsKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	return &Service{System: sys, cfg: cfg, outputsKey: outputsKey}, nil
}

// Caller is who runs a command.
type Caller struct {
	// Actor names the caller in events ("user:ada", "system:scheduler").
	Actor string
	// Role is the role of the caller's API key; "" for the system, which
	// acts on its own behalf and is no administrator.
	Role apikey.Role
}

// IsAdmin reports whether the caller may force what others may not
// (releasing someone else's lock).
func (c Caller) IsAdmin() bool { return c.Role == apikey.RoleAdmin }

// CanReadSecrets reports whether the caller may see secret values, such as
// sensitive outputs: the one rule for that (apikey.Role.CanReadSecrets).
func (c Caller) CanReadSecrets() bool { return c.Role.CanReadSecrets() }
