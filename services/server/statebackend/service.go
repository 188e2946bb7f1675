// Package statebackend keeps the Terraform state of stacks that chose
// managed state. It serves Terraform's http backend protocol (GET, POST,
// DELETE, LOCK, UNLOCK) under /state/<stack id> to runs holding credentials
// minted for their current phase, stores each version in object storage
// under a versioned key, and records every write, lock, unlock, deletion and
// download as an event of the stack's state aggregate (domain/state).
// Administrators import, list, download and roll back versions through the
// Service's methods.
package statebackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/objstore"
)

// StreamType is the event stream type of the state aggregate.
const StreamType = eventstore.StreamState

// StreamOf returns the event stream of a stack's managed state:
// {Type: "state", ID: "state_<stack id>"} (aggregate.ManagedState).
func StreamOf(stackID string) eventstore.Stream { return aggregate.ManagedState.Stream(stackID) }

// DefaultMaxStateSize bounds a state file unless Config says otherwise.
const DefaultMaxStateSize = 64 << 20

// maxAttempts bounds how often a command is decided again after losing a
// race for the state stream's version to a concurrent request.
const maxAttempts = 8

// DB is what the credentials table needs: a *pgxpool.Pool satisfies it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Config configures a Service.
type Config struct {
	// MaxStateSize bounds a state file in bytes: a POST body (413 beyond it)
	// or an import. Default DefaultMaxStateSize (64 MiB).
	MaxStateSize int64
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock that stamps events. Default time.Now.
	Now func() time.Time
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	if c.MaxStateSize < 0 {
		return fmt.Errorf("state backend: max state size %d must not be negative (0 means the default, %d)", c.MaxStateSize, DefaultMaxStateSize)
	}
	return nil
}

func (c *Config) defaults() {
	if c.MaxStateSize == 0 {
		c.MaxStateSize = DefaultMaxStateSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is the managed-state backend: the http handler and the
// administrative operations share it.
type Service struct {
	aggs  *aggregate.Repository
	db    DB
	blobs *objstore.Store
	cfg   Config
	log   *slog.Logger
	creds credCache
}

// New returns a service reading and appending events through aggs (the
// process's one aggregate repository), keeping credentials in db (the
// state_credentials table of eventstore's migrations) and state files in
// blobs, encrypted at rest. The repository's registry must know the state
// events.
func New(aggs *aggregate.Repository, db DB, blobs *objstore.Store, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	var errs []error
	if aggs == nil {
		errs = append(errs, errors.New("state backend: aggregate repository is nil"))
	} else {
		for _, e := range state.Events() {
			if !aggs.Registry().Known(e.EventType()) {
				errs = append(errs, fmt.Errorf("state backend: event type %s is not registered: register state.Events() in the event store's registry", e.EventType()))
				break
			}
		}
	}
	if db == nil {
		errs = append(errs, errors.New("state backend: database is nil"))
	}
	if blobs == nil {
		errs = append(errs, errors.New("state backend: bucket is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Service{aggs: aggs, db: db, blobs: blobs, cfg: cfg, log: cfg.Logger}, nil
}

// State returns the stack's managed state as its events made it: versions,
// current version and lock holder.
func (s *Service) State(ctx context.Context, stackID string) (state.State, error) {
	if err := ids.Stack.Validate("stack_id", stackID); err != nil {
		return state.State{}, err
	}
	return s.load(ctx, stackID)
}

// load returns the stack's state. The state stream grows with every lock
// and write and is read on every request; the repository reads only the
// events appended since its cached state.
func (s *Service) load(ctx context.Context, stackID string) (state.State, error) {
	return aggregate.Load(ctx, s.aggs, aggregate.ManagedState, stackID)
}

// loadRun returns the run's state: the status every request is checked
// against comes from the event store, never from a read model, so
// credentials stop working the moment the run leaves their phase.
func (s *Service) loadRun(ctx context.Context, runID string) (run.State, error) {
	return aggregate.Load(ctx, s.aggs, aggregate.Run, runID)
}

func (s *Service) loadStack(ctx context.Context, stackID string) (stack.State, error) {
	return aggregate.Load(ctx, s.aggs, aggregate.Stack, stackID)
}

// stateAggregate is a stack's managed state in a unit of work.
type stateAggregate = aggregate.Root[state.State, state.Command, state.Event]

// pendingBlob is a state file to store before the events that name it.
type pendingBlob struct {
	key  string
	data []byte
}

// update executes a command on the stack's state: decide decides it on a
// (the stack's state aggregate, freshly loaded) with a.Do and returns the
// bytes of a new version, if the events name one. The blob is written
// before the events are appended: an orphan blob (the append lost a race,
// or failed) is harmless, a version event naming a missing blob is not. A
// lost race decides again on the fresh state, up to maxAttempts times. It
// returns the state after the events (unchanged when the command changed
// nothing).
func (s *Service) update(ctx context.Context, stackID string, decide func(ctx context.Context, a *stateAggregate) (*pendingBlob, error)) (state.State, error) {
	stream := StreamOf(stackID)
	if err := stream.Validate(); err != nil {
		return state.State{}, fmt.Errorf("stack %s: %w", stackID, err)
	}
	var after state.State
	_, err := s.aggs.Execute(ctx, "append to the state of stack "+stackID, func(ctx context.Context, u *aggregate.Unit) error {
		a, err := aggregate.Get(ctx, u, aggregate.ManagedState, stackID)
		if err != nil {
			return err
		}
		b, err := decide(ctx, a)
		if err != nil {
			return err
		}
		if b != nil {
			if err := s.writeBlob(ctx, b); err != nil {
				return err
			}
		}
		after = a.State()
		return nil
	}, aggregate.MaxAttempts(maxAttempts))
	if err != nil {
		return state.State{}, err
	}
	return after, nil
}

// withActor returns ctx whose appends carry actor, keeping the correlation
// and trace ids a caller set.
func withActor(ctx context.Context, actor, causation string) context.Context {
	md := eventstore.MetadataFrom(ctx)
	md.Actor = actor
	if causation != "" {
		md.CausationID = causation
		if md.CorrelationID == "" {
			md.CorrelationID = causation
		}
	}
	return eventstore.WithMetadata(ctx, md)
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// MaxStateSize is the largest state file the service takes: the body
// limit of its handler's route.
func (s *Service) MaxStateSize() int64 { return s.cfg.MaxStateSize }
