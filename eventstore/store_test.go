package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/testenv/await"
)

func TestAppendAndLoad(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := eventstore.WithMetadata(context.Background(), eventstore.Metadata{Actor: "alice", CorrelationID: "c1", CausationID: "k1"})
	stream := eventstore.Stream{Type: "thing", ID: "thg_1"}

	got, err := s.Append(ctx, stream, eventstore.NoStream, thingCreated{Name: "a"}, thingRenamed{Name: "b", N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Version != 1 || got[1].Version != 2 || got[0].Position >= got[1].Position {
		t.Fatalf("appended = %+v", got)
	}
	if _, err := s.Append(ctx, stream, 2, thingRenamed{Name: "c", N: 2}); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load(ctx, stream.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 3 {
		t.Fatalf("loaded %d events, want 3", len(loaded))
	}
	if loaded[0].ID != got[0].ID || !loaded[0].Time.Equal(got[0].Time) || loaded[0].Tx != got[0].Tx {
		t.Fatalf("loaded[0] = %+v, appended %+v", loaded[0], got[0])
	}
	for i, e := range loaded {
		if e.Version != int64(i+1) || e.StreamType != "thing" || e.SchemaVersion != 1 || e.Metadata.Actor != "alice" ||
			e.Metadata.CorrelationID != "c1" || e.Metadata.CausationID != "k1" {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	data, err := s.Registry().Decode(loaded[2])
	if err != nil {
		t.Fatal(err)
	}
	if data != (thingRenamed{Name: "c", N: 2}) {
		t.Fatalf("decoded %#v", data)
	}
	if v, err := s.Version(ctx, stream.ID); err != nil || v != 3 {
		t.Fatalf("version = %d, %v", v, err)
	}
}

func TestAppendExpectedVersion(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	stream := eventstore.Stream{Type: "thing", ID: "thg_2"}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, thingCreated{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		expected int64
	}{
		{"no stream on an existing stream", eventstore.NoStream},
		{"stale", 0},
		{"ahead of the stream", 5},
	} {
		_, err := s.Append(ctx, stream, tc.expected, thingRenamed{Name: "x"})
		var ce *eventstore.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrConflict) || ce.Actual != 1 || ce.Expected != tc.expected {
			t.Errorf("%s: err = %v, want a conflict at actual version 1", tc.name, err)
		}
	}
	if _, err := s.Append(ctx, stream, eventstore.Any, thingRenamed{Name: "y"}); err != nil {
		t.Fatalf("append any: %v", err)
	}
	if n := countEvents(t, pool); n != 2 {
		t.Fatalf("events = %d, want 2 (conflicts write nothing)", n)
	}
}

func TestAppendConflictExactlyOneWins(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	const rounds, racers = 20, 4
	for r := range rounds {
		stream := eventstore.Stream{Type: "thing", ID: "race_" + string(rune('a'+r))}
		if _, err := s.Append(ctx, stream, eventstore.NoStream, thingCreated{Name: "a"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Append(ctx, stream, 1, thingRenamed{Name: "b", N: i}, thingRenamed{Name: "c", N: i})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, eventstore.ErrConflict):
			default:
				t.Fatalf("round %d: unexpected error %v", r, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d appends won, want exactly 1", r, won)
		}
	}
	if n := countEvents(t, pool); n != rounds*3 {
		t.Fatalf("events = %d, want %d", n, rounds*3)
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	ok := eventstore.Stream{Type: "thing", ID: "thg_3"}
	for _, tc := range []struct {
		name    string
		stream  eventstore.Stream
		events  []any
		want    error
		wantMsg string
	}{
		{"empty stream id", eventstore.Stream{Type: "thing"}, []any{thingCreated{}}, eventstore.ErrInvalidEvent, "stream id: must not be empty"},
		{"stream id with a dot", eventstore.Stream{Type: "thing", ID: "a.b"}, []any{thingCreated{}}, eventstore.ErrInvalidEvent, "stream id"},
		{"empty stream type", eventstore.Stream{ID: "x"}, []any{thingCreated{}}, eventstore.ErrInvalidEvent, "stream type"},
		{"no events", ok, nil, eventstore.ErrInvalidEvent, "no events"},
		{"unknown event type", ok, []any{struct{ A int }{1}}, eventstore.ErrUnknownEventType, "not registered"},
		{"unknown type after a good one", ok, []any{thingCreated{}, 42}, eventstore.ErrUnknownEventType, "event 1"},
		{"payload does not serialize", ok, []any{unserializable{C: make(chan int)}}, eventstore.ErrInvalidEvent, "does not serialize"},
	} {
		_, err := s.Append(ctx, tc.stream, eventstore.Any, tc.events...)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, err, tc.want, tc.wantMsg)
		}
	}
	if _, err := s.Append(ctx, ok, -2, thingCreated{}); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("expected version -2: err = %v", err)
	}
	if n := countEvents(t, pool); n != 0 {
		t.Fatalf("bad input wrote %d events", n)
	}
}

func TestReadAllAndCursorFrom(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	var all []eventstore.Event
	for i := range 5 {
		evs, err := s.Append(ctx, eventstore.Stream{Type: "thing", ID: "thg_" + string(rune('a'+i%2))}, eventstore.Any, thingCreated{Name: "x"}, thingRenamed{Name: "y", N: i})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	got := readN(t, s, eventstore.Cursor{}, eventstore.Filter{}, 3, 3)
	if len(got) != 3 || got[0].ID != all[0].ID || got[2].ID != all[2].ID {
		t.Fatalf("first page = %v", ids(got))
	}
	rest := readN(t, s, got[2].Cursor(), eventstore.Filter{}, 100, 7)
	if len(rest) != 7 || rest[6].ID != all[9].ID {
		t.Fatalf("rest = %v", ids(rest))
	}
	filtered := readN(t, s, eventstore.Cursor{}, eventstore.Filter{StreamID: "thg_b", EventType: "ThingRenamed"}, 100, 2)
	if len(filtered) != 2 {
		t.Fatalf("filtered = %v", ids(filtered))
	}
	for _, e := range filtered {
		if e.StreamID != "thg_b" || e.Type != "ThingRenamed" {
			t.Fatalf("filter let through %+v", e)
		}
	}
	c, err := s.CursorFrom(ctx, all[4].Position)
	if err != nil {
		t.Fatal(err)
	}
	from := readN(t, s, c, eventstore.Filter{}, 100, 6)
	if len(from) != 6 || from[0].ID != all[4].ID {
		t.Fatalf("from position %d = %v", all[4].Position, ids(from))
	}
	end, err := s.CursorFrom(ctx, all[9].Position+100)
	if err != nil {
		t.Fatal(err)
	}
	if tail, _ := s.ReadAll(ctx, end, eventstore.Filter{}, 100); len(tail) != 0 {
		t.Fatalf("after the end: %v", ids(tail))
	}
}

// An event whose transaction commits after a later-started one's must not
// be skipped by a reader that already moved past the later one.
func TestReadAllNeverSkipsALateCommit(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	// Open a transaction that appends (takes a lower transaction id) but
	// does not commit yet.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, recorded_at)
		VALUES (gen_random_uuid(), 'late_1', 'thing', 1, 'ThingCreated', 1, '{"name":"late"}', now())`); err != nil {
		t.Fatal(err)
	}
	early, err := s.Append(ctx, eventstore.Stream{Type: "thing", ID: "early_1"}, eventstore.NoStream, thingCreated{Name: "early"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("reader saw %v while an older transaction is open: it would skip that one", ids(got))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got = readN(t, s, eventstore.Cursor{}, eventstore.Filter{}, 100, 2)
	if len(got) != 2 || got[0].StreamID != "late_1" || got[1].ID != early[0].ID {
		t.Fatalf("after commit: %v", got)
	}
}

// readN reads after c until want events are visible: transactions of
// parallel tests on the shared cluster hold the xmin barrier back briefly.
func readN(t *testing.T, s *eventstore.Store, c eventstore.Cursor, f eventstore.Filter, limit, want int) []eventstore.Event {
	t.Helper()
	var got []eventstore.Event
	await.Until(t, 10*time.Second, fmt.Sprintf("%d events to be readable", want), func() bool {
		var err error
		got, err = s.ReadAll(context.Background(), c, f, limit)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) >= want
	})
	return got
}

func ids(evs []eventstore.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

func TestMigrateTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	pool := newPool(t) // migrated once
	ctx := context.Background()
	schema := func() string {
		var s string
		err := pool.QueryRow(ctx, `SELECT string_agg(table_name || '.' || column_name || ':' || data_type || ':' || coalesce(column_default, ''), ',' ORDER BY table_name, column_name)
			FROM information_schema.columns WHERE table_schema = 'public'`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		var idx string
		if err := pool.QueryRow(ctx, `SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'`).Scan(&idx); err != nil {
			t.Fatal(err)
		}
		return s + "|" + idx
	}
	before := schema()
	applied, err := eventstore.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v", applied)
	}
	if after := schema(); after != before {
		t.Fatalf("schema changed:\n%s\n%s", before, after)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, _ := eventstore.Migrations()
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	pool := openPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = eventstore.Migrate(ctx, pool) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := countEvents(t, pool); n != 0 {
		t.Fatalf("events = %d", n)
	}
}

func TestAppendAllIsAtomic(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	a := eventstore.Stream{Type: "thing", ID: "atom_a"}
	b := eventstore.Stream{Type: "thing", ID: "atom_b"}
	if _, err := s.Append(ctx, b, eventstore.NoStream, thingCreated{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.AppendAll(ctx,
		eventstore.Batch{Stream: a, Expected: eventstore.NoStream, Events: []any{thingCreated{Name: "a"}}},
		eventstore.Batch{Stream: b, Expected: eventstore.NoStream, Events: []any{thingRenamed{Name: "b2"}}})
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) || ce.Stream != b {
		t.Fatalf("err = %v, want a conflict on %s", err, b)
	}
	if n := countEvents(t, pool); n != 1 {
		t.Fatalf("events = %d: the first batch was written without the second", n)
	}
	out, err := s.AppendAll(ctx,
		eventstore.Batch{Stream: a, Expected: eventstore.NoStream, Events: []any{thingCreated{Name: "a"}}},
		eventstore.Batch{Stream: b, Expected: 1, Events: []any{thingRenamed{Name: "b2"}, thingRenamed{Name: "b3"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || len(out[0]) != 1 || len(out[1]) != 2 || out[1][1].Version != 3 || out[0][0].Tx != out[1][0].Tx {
		t.Fatalf("appended %+v", out)
	}
	if _, err := s.AppendAll(ctx,
		eventstore.Batch{Stream: a, Expected: eventstore.Any, Events: []any{thingCreated{}}},
		eventstore.Batch{Stream: a, Expected: eventstore.Any, Events: []any{thingCreated{}}}); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("same stream twice: err = %v", err)
	}
}
