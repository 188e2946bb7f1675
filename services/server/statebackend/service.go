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
	"gocloud.dev/blob"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/eventstore"
)

// StreamType is the event stream type of the state aggregate.
const StreamType = "state"

// streamPrefix makes a state stream's id from its stack's id. Stream ids are
// unique across stream types (the stack's own stream is the stack id), so the
// state stream cannot reuse the stack id unchanged.
const streamPrefix = "state_"

// StreamOf returns the event stream of a stack's managed state:
// {Type: "state", ID: "state_<stack id>"}.
func StreamOf(stackID string) eventstore.Stream {
	return eventstore.Stream{Type: StreamType, ID: streamPrefix + stackID}
}

// DefaultMaxStateSize bounds a state file unless Config says otherwise.
const DefaultMaxStateSize = 64 << 20

// maxAttempts bounds how often a command is decided again after losing a
// race for the state stream's version to a concurrent request.
const maxAttempts = 8

// EventStore is what the service needs from the event store.
type EventStore interface {
	Load(ctx context.Context, streamID string) ([]eventstore.Event, error)
	LoadAfter(ctx context.Context, streamID string, after int64) ([]eventstore.Event, error)
	Append(ctx context.Context, stream eventstore.Stream, expected int64, events ...any) ([]eventstore.Event, error)
	Registry() *eventstore.Registry
}

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
	store  EventStore
	db     DB
	bucket *blob.Bucket
	cfg    Config
	log    *slog.Logger
	cache  *stateCache
	creds  credCache
}

// New returns a service storing events in store, credentials in db (the
// state_credentials table of eventstore's migrations) and state files in
// bucket. The store's registry must know the state events.
func New(store EventStore, db DB, bucket *blob.Bucket, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("state backend: event store is nil"))
	} else {
		for _, e := range state.Events() {
			if !store.Registry().Known(e.EventType()) {
				errs = append(errs, fmt.Errorf("state backend: event type %s is not registered: register state.Events() in the event store's registry", e.EventType()))
				break
			}
		}
	}
	if db == nil {
		errs = append(errs, errors.New("state backend: database is nil"))
	}
	if bucket == nil {
		errs = append(errs, errors.New("state backend: bucket is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Service{store: store, db: db, bucket: bucket, cfg: cfg, log: cfg.Logger, cache: newStateCache()}, nil
}

// State returns the stack's managed state as its events made it: versions,
// current version and lock holder.
func (s *Service) State(ctx context.Context, stackID string) (state.State, error) {
	if err := ids.Stack.Validate("stack_id", stackID); err != nil {
		return state.State{}, err
	}
	st, _, err := s.load(ctx, stackID)
	return st, err
}

// load returns the stack's state and its stream version, reading only the
// events appended since the last load: the state stream grows with every
// lock and write, and is read on every request.
func (s *Service) load(ctx context.Context, stackID string) (state.State, int64, error) {
	return s.cache.load(ctx, stackID, func(after int64) ([]eventstore.Event, error) {
		return s.store.LoadAfter(ctx, StreamOf(stackID).ID, after)
	}, s.store.Registry())
}

// pendingBlob is a state file to store before the events that name it.
type pendingBlob struct {
	key  string
	data []byte
}

// decision is what a command produced: events to append and, for a new
// version, the bytes to store first.
type decision struct {
	events []state.Event
	blob   *pendingBlob
}

// update decides a command against the stack's current state and appends
// its events with the state's stream version as the expected version. The
// blob is written before the append: an orphan blob (the append lost a race,
// or failed) is harmless, a version event naming a missing blob is not. A
// lost race decides again on the fresh state. It returns the state after the
// events (unchanged when the command changed nothing).
func (s *Service) update(ctx context.Context, stackID string, decide func(state.State) (decision, error)) (state.State, []state.Event, error) {
	stream := StreamOf(stackID)
	if err := stream.Validate(); err != nil {
		return state.State{}, nil, fmt.Errorf("stack %s: %w", stackID, err)
	}
	for attempt := 1; ; attempt++ {
		st, version, err := s.load(ctx, stackID)
		if err != nil {
			return state.State{}, nil, err
		}
		d, err := decide(st)
		if err != nil || len(d.events) == 0 {
			return st, nil, err
		}
		if d.blob != nil {
			if err := s.writeBlob(ctx, d.blob); err != nil {
				return st, nil, err
			}
		}
		_, err = s.store.Append(ctx, stream, version, toAny(d.events)...)
		if errors.Is(err, eventstore.ErrConflict) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return st, nil, fmt.Errorf("append to the state of stack %s: %w", stackID, err)
		}
		for _, e := range d.events {
			st.Apply(e)
		}
		return st, d.events, nil
	}
}

func toAny(events []state.Event) []any {
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = e
	}
	return out
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
