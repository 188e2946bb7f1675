// Package aggregate is the one way Gantry reads and changes aggregates. A
// Repository folds a stream's events into the state of its aggregate,
// starting from one bounded cache shared by every kind, so that a long
// stream (a stack's grows with every run it ever queued) is not refolded on
// every request. Execute runs a command as a unit of work: it decides on
// freshly loaded aggregates, appends every pending event in one AppendAll at
// the versions it loaded, and when another writer got there first (a
// version conflict) starts over after a jittered, exponentially growing
// pause, up to a bound.
package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gantryhq/gantry/eventstore"
)

// ErrStreamType is matched by the error of a load that met an event of
// another stream type than the kind's: stream ids are unique across types,
// so the key names an aggregate of another kind.
var ErrStreamType = errors.New("the stream belongs to another kind of aggregate")

// Store is the event store as the repository uses it; *eventstore.Store
// satisfies it.
type Store interface {
	// LoadAfter returns the events of a stream with a version above after,
	// in version order.
	LoadAfter(ctx context.Context, streamID string, after int64) ([]eventstore.Event, error)
	// AppendAll appends to several streams in one transaction, each at its
	// expected version; a stale version is a *eventstore.ConflictError.
	AppendAll(ctx context.Context, batches ...eventstore.Batch) ([][]eventstore.Event, error)
	// Registry returns the store's event type registry.
	Registry() *eventstore.Registry
}

// Defaults of Config.
const (
	DefaultCachedStreams = 16384
	DefaultMaxAttempts   = 5
)

// Config configures a Repository.
type Config struct {
	// CachedStreams bounds how many streams' states are kept between loads.
	// Default DefaultCachedStreams.
	CachedStreams int
	// MaxAttempts bounds the tries of a command that keeps losing to
	// concurrent writers, unless Execute is told otherwise. Default
	// DefaultMaxAttempts.
	MaxAttempts int
	// Logger receives the retries, at debug level. Default: discard.
	Logger *slog.Logger
}

// Validate reports every bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.CachedStreams < 0 {
		errs = append(errs, fmt.Errorf("cached streams %d: must not be negative", c.CachedStreams))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d: must not be negative", c.MaxAttempts))
	}
	return errors.Join(errs...)
}

func (c *Config) defaults() {
	if c.CachedStreams == 0 {
		c.CachedStreams = DefaultCachedStreams
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Repository loads aggregates from an event store and executes commands on
// them. One Repository serves every kind and every component of a process,
// so that they share its cache. It is safe for concurrent use.
type Repository struct {
	store Store
	cfg   Config
	log   *slog.Logger
	cache *cache
}

// New returns a repository on store. The store's registry must decode the
// events of every kind used (eventstore.DomainRegistry).
func New(store Store, cfg Config) (*Repository, error) {
	if store == nil {
		return nil, errors.New("aggregate repository: store is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aggregate repository config: %w", err)
	}
	cfg.defaults()
	return &Repository{store: store, cfg: cfg, log: cfg.Logger.With("component", "aggregates"), cache: newCache(cfg.CachedStreams)}, nil
}

// Registry returns the registry of the repository's store.
func (r *Repository) Registry() *eventstore.Registry { return r.store.Registry() }

// Load returns the current state of the aggregate of kind k with key, the
// zero state when it has no events. It reads only the events appended since
// the cached state, so it is always current. For decisions, load the
// aggregate with Get in a unit of work instead.
func Load[S, C, E any](ctx context.Context, r *Repository, k Kind[S, C, E], key string) (S, error) {
	st, _, err := load(ctx, r, k, k.Stream(key))
	return st, err
}

// load folds stream into its state, starting from the cached state of the
// stream when there is one, and returns the version it reached
// (eventstore.NoStream for a stream with no events). A stream holding an
// event of another type is an error matching ErrStreamType.
func load[S, C, E any](ctx context.Context, r *Repository, k Kind[S, C, E], stream eventstore.Stream) (S, int64, error) {
	var state S
	version := eventstore.NoStream
	if c, ok := r.cache.get(stream.ID); ok && c.streamType == stream.Type {
		if st, ok := c.state.(S); ok {
			state, version = st, c.version
		}
	}
	stored, err := r.store.LoadAfter(ctx, stream.ID, version)
	if err != nil {
		return state, 0, fmt.Errorf("load %s: %w", stream, err)
	}
	for _, e := range stored {
		if e.StreamType != stream.Type {
			return state, 0, fmt.Errorf("load %s: event %s at version %d belongs to a %s stream: %w", stream, e.ID, e.Version, e.StreamType, ErrStreamType)
		}
		v, err := r.store.Registry().Decode(e)
		if err != nil {
			return state, 0, fmt.Errorf("load %s: %w", stream, err)
		}
		ev, ok := v.(E)
		if !ok {
			return state, 0, fmt.Errorf("load %s: event %s (%s) at version %d is not a %s event", stream, e.ID, e.Type, e.Version, stream.Type)
		}
		k.Apply(&state, ev)
		version = e.Version
	}
	if len(stored) > 0 {
		r.cache.put(stream.ID, cached{streamType: stream.Type, version: version, state: state})
	}
	return state, version, nil
}
