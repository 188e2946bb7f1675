package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/name"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }

const actor = "user:test"

var t0 = time.Now().UTC().Truncate(time.Microsecond)

// recordingStore is the real store, counting appends and noting from which
// version each load read.
type recordingStore struct {
	*eventstore.Store
	mu      sync.Mutex
	after   map[string][]int64 // stream id → the after of each LoadAfter
	appends atomic.Int32
	// interfere, when set, runs before each append: another writer.
	interfere func(ctx context.Context, n int32) error
}

func (s *recordingStore) LoadAfter(ctx context.Context, streamID string, after int64) ([]eventstore.Event, error) {
	s.mu.Lock()
	s.after[streamID] = append(s.after[streamID], after)
	s.mu.Unlock()
	return s.Store.LoadAfter(ctx, streamID, after)
}

func (s *recordingStore) AppendAll(ctx context.Context, batches ...eventstore.Batch) ([][]eventstore.Event, error) {
	n := s.appends.Add(1)
	if s.interfere != nil {
		if err := s.interfere(ctx, n); err != nil {
			return nil, err
		}
	}
	return s.Store.AppendAll(ctx, batches...)
}

func (s *recordingStore) loadsOf(streamID string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.after[streamID])
}

type env struct {
	store *eventstore.Store
	rec   *recordingStore
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	_, store := testenv.EventStore(t, reg)
	return &env{store: store, rec: &recordingStore{Store: store, after: map[string][]int64{}}}
}

func (e *env) repo(t *testing.T, cfg aggregate.Config) *aggregate.Repository {
	t.Helper()
	r, err := aggregate.New(e.rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appendDirect appends events as another process would, behind the
// repository's back.
func (e *env) appendDirect(t testing.TB, stream eventstore.Stream, events ...any) {
	t.Helper()
	if _, err := e.store.Append(context.Background(), stream, eventstore.Any, events...); err != nil {
		t.Fatal(err)
	}
}

func created(id, stackName string) stack.StackCreated {
	return stack.StackCreated{StackID: id, Settings: stack.Settings{Name: stackName, RepositoryURL: "https://git.example.com/infra.git",
		Branch: "main", Tool: stack.Terraform, WorkerPoolID: "wp_public"}, At: t0, Actor: actor}
}

func envSet(key string, n int) stack.StackEnvSet {
	return stack.StackEnvSet{Key: key, Name: key, Scope: stack.ScopeAll, Value: fmt.Sprint(n), At: t0.Add(time.Duration(n) * time.Millisecond), Actor: actor}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return eventstore.WithMetadata(c, eventstore.Metadata{Actor: actor, CorrelationID: t.Name()})
}

func TestLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.repo(t, aggregate.Config{})
	tests := []struct {
		name  string
		given []any // events of stk_load, appended before the load
		check func(stack.State) error
	}{
		{"no events: the zero state", nil, func(s stack.State) error {
			if s.Exists() {
				return errors.New("an aggregate without events exists")
			}
			return nil
		}},
		{"created", []any{created("stk_load", "load")}, func(s stack.State) error {
			if !s.Exists() || s.Settings().Name != "load" {
				return fmt.Errorf("state %+v", s)
			}
			return nil
		}},
		{"events appended since the last load", []any{envSet("A", 1), envSet("B", 2)}, func(s stack.State) error {
			if len(s.EnvVars()) != 2 || s.Settings().Name != "load" {
				return fmt.Errorf("env %v, settings %+v", s.EnvVars(), s.Settings())
			}
			return nil
		}},
	}
	for _, tt := range tests {
		if len(tt.given) > 0 {
			e.appendDirect(t, aggregate.Stack.Stream("stk_load"), tt.given...)
		}
		st, err := aggregate.Load(ctx(t), r, aggregate.Stack, "stk_load")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if err := tt.check(st); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// The loads after the first read only what was appended since.
	if got, want := e.rec.loadsOf("stk_load"), []int64{0, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("loads read after versions %v, want %v", got, want)
	}
}

func TestLoadOfAnotherKindsStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.repo(t, aggregate.Config{})
	e.appendDirect(t, aggregate.Stack.Stream("stk_other"), created("stk_other", "other"))
	_, err := aggregate.Load(ctx(t), r, aggregate.Worker, "stk_other")
	if !errors.Is(err, aggregate.ErrStreamType) {
		t.Fatalf("load of a stack as a worker: %v, want ErrStreamType", err)
	}
}

// Streams whose id is not the key keep the ids they are stored under.
func TestKindsKeepTheirStreamIDs(t *testing.T) {
	for _, tt := range []struct{ got, want eventstore.Stream }{
		{aggregate.Run.Stream("run_1"), eventstore.Stream{Type: "run", ID: "run_1"}},
		{aggregate.Stack.Stream("stk_1"), eventstore.Stream{Type: "stack", ID: "stk_1"}},
		{aggregate.WorkerPool.Stream("wp_1"), eventstore.Stream{Type: "workerpool", ID: "wp_1"}},
		{aggregate.Worker.Stream("wkr_1"), eventstore.Stream{Type: "worker", ID: "wkr_1"}},
		{aggregate.ManagedState.Stream("stk_1"), eventstore.Stream{Type: "state", ID: "state_stk_1"}},
		{aggregate.StackName.Stream("Web"), eventstore.Stream{Type: "stackname", ID: "stackname_4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2"}},
		{aggregate.PoolName.Stream("WEB"), eventstore.Stream{Type: "poolname", ID: "poolname_4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2"}},
		{aggregate.APIKey.Stream("ak_1"), eventstore.Stream{Type: "apikey", ID: "ak_1"}},
		{aggregate.APIKeyName.Stream("wEb"), eventstore.Stream{Type: "apikeyname", ID: "apikeyname_4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2"}},
	} {
		if tt.got != tt.want {
			t.Errorf("stream %v, want %v", tt.got, tt.want)
		}
	}
}

// The cache is bounded: a stream pushed out is read in full again, and is
// still current.
func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.repo(t, aggregate.Config{CachedStreams: 1})
	e.appendDirect(t, aggregate.Stack.Stream("stk_a"), created("stk_a", "a"), envSet("X", 1))
	e.appendDirect(t, aggregate.Stack.Stream("stk_b"), created("stk_b", "b"))
	for _, id := range []string{"stk_a", "stk_a", "stk_b", "stk_a"} {
		if st, err := aggregate.Load(ctx(t), r, aggregate.Stack, id); err != nil || st.ID() != id {
			t.Fatalf("load %s: %v, %v", id, st.ID(), err)
		}
	}
	if got, want := e.rec.loadsOf("stk_a"), []int64{0, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("loads of stk_a read after versions %v, want %v (the third after stk_b took its place)", got, want)
	}
}

func TestExecute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.repo(t, aggregate.Config{})
	tests := []struct {
		name    string
		decide  aggregate.Decision
		is      error // the error wanted, if any
		prefix  string
		streams []int // events appended per batch
		appends int32 // calls of AppendAll
		check   func() error
	}{
		{
			name: "two aggregates in one append",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_exec")
				if err != nil {
					return err
				}
				if _, err := stk.Do(stack.Create{StackID: "stk_exec", Settings: created("", "exec").Settings, Actor: actor, At: t0}); err != nil {
					return err
				}
				n, err := aggregate.Get(ctx, u, aggregate.StackName, "Exec")
				if err != nil {
					return err
				}
				_, err = n.Do(name.Reserve{Kind: "stack", Name: "exec", OwnerID: "stk_exec", Actor: actor, At: t0})
				return err
			},
			streams: []int{1, 1},
			appends: 1,
			check: func() error {
				owner, err := aggregate.Load(context.Background(), r, aggregate.StackName, "EXEC")
				if err != nil || owner.Owner() != "stk_exec" {
					return fmt.Errorf("name owner %q, %v", owner.Owner(), err)
				}
				return nil
			},
		},
		{
			name: "two decisions on one aggregate see each other",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				for i, key := range []string{"A", "B"} {
					stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_exec")
					if err != nil {
						return err
					}
					if len(stk.State().EnvVars()) != i {
						return fmt.Errorf("decision %d sees %d variables", i, len(stk.State().EnvVars()))
					}
					if _, err := stk.Do(stack.SetEnv{Key: key, Value: "1", Actor: actor, At: t0}); err != nil {
						return err
					}
				}
				return nil
			},
			streams: []int{2},
			appends: 1,
		},
		{
			name: "nothing to change appends nothing",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_exec")
				if err != nil {
					return err
				}
				_, err = stk.Do(stack.SetEnv{Key: "A", Value: "1", Actor: actor, At: t0})
				return err
			},
		},
		{
			name: "a refusal appends nothing and is returned as it is",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_exec")
				if err != nil {
					return err
				}
				if _, err := stk.Do(stack.SetEnv{Key: "C", Value: "1", Actor: actor, At: t0}); err != nil {
					return err
				}
				n, err := aggregate.Get(ctx, u, aggregate.StackName, "exec")
				if err != nil {
					return err
				}
				_, err = n.Do(name.Reserve{Kind: "stack", Name: "exec", OwnerID: "stk_thief", Actor: actor, At: t0})
				return err
			},
			is: domain.ErrAlreadyExists,
			check: func() error {
				st, err := aggregate.Load(context.Background(), r, aggregate.Stack, "stk_exec")
				if err != nil || len(st.EnvVars()) != 2 {
					return fmt.Errorf("variables %v, %v: want A and B only", st.EnvVars(), err)
				}
				return nil
			},
		},
		{
			name: "one stream as two kinds",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				if _, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_exec"); err != nil {
					return err
				}
				_, err := aggregate.Get(ctx, u, aggregate.Run, "stk_exec")
				return err
			},
			is: errAny,
		},
		{
			name: "a prepared batch goes out with the aggregates'",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_exec")
				if err != nil {
					return err
				}
				if _, err := stk.Do(stack.DeleteEnv{Key: "B", Actor: actor, At: t0}); err != nil {
					return err
				}
				u.Append(eventstore.Batch{Stream: aggregate.Worker.Stream("wkr_exec"), Expected: eventstore.NoStream,
					Events: []any{worker.WorkerRegistered{WorkerID: "wkr_exec", PoolID: "wp_public", At: t0, Actor: actor}}})
				return nil
			},
			streams: []int{1, 1},
			appends: 1,
		},
		{
			name: "a failed append is not retried and names the command",
			decide: func(ctx context.Context, u *aggregate.Unit) error {
				u.Append(eventstore.Batch{Stream: eventstore.Stream{Type: "stack", ID: "bad id"}, Events: []any{envSet("X", 1)}})
				return nil
			},
			is:      errAny,
			prefix:  "test a failed append is not retried and names the command: ",
			appends: 1,
		},
	}
	for _, tt := range tests {
		before := e.rec.appends.Load()
		out, err := r.Execute(ctx(t), "test "+tt.name, tt.decide)
		switch {
		case tt.is == nil && err != nil:
			t.Fatalf("%s: %v", tt.name, err)
		case tt.is == errAny && err == nil, tt.is != nil && tt.is != errAny && !errors.Is(err, tt.is):
			t.Fatalf("%s: error %v, want %v", tt.name, err, tt.is)
		case tt.prefix != "" && !strings.HasPrefix(err.Error(), tt.prefix):
			t.Errorf("%s: error %q, want it to start with %q", tt.name, err, tt.prefix)
		}
		var got []int
		for _, b := range out {
			got = append(got, len(b))
		}
		if !slices.Equal(got, tt.streams) {
			t.Errorf("%s: appended %v events per stream, want %v", tt.name, got, tt.streams)
		}
		if appends := e.rec.appends.Load() - before; appends != tt.appends {
			t.Errorf("%s: %d appends, want %d", tt.name, appends, tt.appends)
		}
		if tt.check != nil {
			if err := tt.check(); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
	}
}

// errAny stands for "some error" in a table.
var errAny = errors.New("any error")

// A conflict makes Execute decide again on the fresh state; one that never
// ends gives up after the bound with the conflict wrapped.
func TestExecuteRetriesConflicts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.appendDirect(t, aggregate.Stack.Stream("stk_race"), created("stk_race", "race"))
	// Another writer sets a new variable before each of the first `times`
	// appends of a command.
	var others atomic.Int32
	interfere := func(times int32) func(context.Context, int32) error {
		return func(ctx context.Context, n int32) error {
			if n > times {
				return nil
			}
			other := others.Add(1)
			_, err := e.store.Append(ctx, aggregate.Stack.Stream("stk_race"), eventstore.Any, envSet(fmt.Sprint("OTHER_", other), int(other)))
			return err
		}
	}
	setVar := func(key string, seen *[]int) aggregate.Decision {
		return func(ctx context.Context, u *aggregate.Unit) error {
			stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_race")
			if err != nil {
				return err
			}
			*seen = append(*seen, len(stk.State().EnvVars()))
			_, err = stk.Do(stack.SetEnv{Key: key, Value: "mine", Actor: actor, At: t0})
			return err
		}
	}
	tests := []struct {
		name      string
		cfg       aggregate.Config
		opts      []aggregate.Option
		times     int32
		attempts  int32
		gaveUp    bool
		variables int // the stack's variables afterwards
	}{
		{"two conflicts, then success", aggregate.Config{}, nil, 2, 3, false, 3},
		{"conflicts to the default bound", aggregate.Config{}, nil, 1000, aggregate.DefaultMaxAttempts, true, 3 + aggregate.DefaultMaxAttempts},
		{"conflicts to the configured bound", aggregate.Config{MaxAttempts: 3}, nil, 1000, 3, true, 3 + aggregate.DefaultMaxAttempts + 3},
		{"conflicts to the command's bound", aggregate.Config{MaxAttempts: 3}, []aggregate.Option{aggregate.MaxAttempts(4)}, 1000, 4, true, 3 + aggregate.DefaultMaxAttempts + 3 + 4},
	}
	for i, tt := range tests {
		e.rec.appends.Store(0)
		e.rec.interfere = interfere(tt.times)
		r := e.repo(t, tt.cfg)
		var seen []int
		key := fmt.Sprint("MINE_", i)
		_, err := r.Execute(ctx(t), "set "+key, setVar(key, &seen), tt.opts...)
		var conflict *eventstore.ConflictError
		switch {
		case !tt.gaveUp && err != nil:
			t.Fatalf("%s: %v", tt.name, err)
		case tt.gaveUp && (!errors.As(err, &conflict) || conflict.Stream.ID != "stk_race" ||
			!strings.HasPrefix(err.Error(), fmt.Sprintf("set %s: gave up after %d attempts", key, tt.attempts))):
			t.Fatalf("%s: error %v, want the stack's conflict after %d attempts", tt.name, err, tt.attempts)
		}
		if got := e.rec.appends.Load(); got != tt.attempts {
			t.Errorf("%s: %d attempts, want %d", tt.name, got, tt.attempts)
		}
		// Each attempt decided on what the other writer had appended.
		for j := 1; j < len(seen); j++ {
			if seen[j] != seen[j-1]+1 {
				t.Errorf("%s: attempts saw %v variables: each one should see the other writer's new one", tt.name, seen)
				break
			}
		}
		st, err := aggregate.Load(ctx(t), r, aggregate.Stack, "stk_race")
		if err != nil || len(st.EnvVars()) != tt.variables {
			t.Errorf("%s: %d variables, %v; want %d", tt.name, len(st.EnvVars()), err, tt.variables)
		}
	}
}

// Writers racing on one stream through one repository (and its cache) all
// get through with enough attempts, and the stream has every change once.
func TestConcurrentExecutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.repo(t, aggregate.Config{MaxAttempts: 50})
	e.appendDirect(t, aggregate.Stack.Stream("stk_busy"), created("stk_busy", "busy"))
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = r.Execute(ctx(t), "set", func(ctx context.Context, u *aggregate.Unit) error {
				stk, err := aggregate.Get(ctx, u, aggregate.Stack, "stk_busy")
				if err != nil {
					return err
				}
				_, err = stk.Do(stack.SetEnv{Key: fmt.Sprint("K", i), Value: "v", Actor: actor, At: t0})
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	st, err := aggregate.Load(ctx(t), r, aggregate.Stack, "stk_busy")
	if err != nil || len(st.EnvVars()) != writers {
		t.Fatalf("%d variables, %v; want %d", len(st.EnvVars()), err, writers)
	}
	stored, err := e.store.Load(context.Background(), "stk_busy")
	if err != nil || len(stored) != writers+1 {
		t.Fatalf("%d events, %v; want %d", len(stored), err, writers+1)
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	if _, err := aggregate.New(nil, aggregate.Config{}); err == nil {
		t.Error("New accepted no store")
	}
	e := newEnv(t)
	if _, err := aggregate.New(e.store, aggregate.Config{CachedStreams: -1, MaxAttempts: -1}); err == nil ||
		!strings.Contains(err.Error(), "cached streams") || !strings.Contains(err.Error(), "max attempts") {
		t.Errorf("New with negative settings: %v", err)
	}
}
