package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// waitForConsumer waits until the projectors' durable consumer exists: it
// delivers only what is published from then on.
func waitForConsumer(t testing.TB, nc *nats.Conn, durable string) jetstream.Consumer {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var cons jetstream.Consumer
	await.Until(t, 30*time.Second, "the durable consumer "+durable, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cons, err = js.Consumer(ctx, eventstore.EventsStream, durable)
		return err == nil
	})
	return cons
}

func TestProjectorFollowsRelayedEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.startRelay(t)
	// No periodic catch-up during the test: only the messages wake it.
	p := e.projector(t, projections.Config{CatchUpInterval: time.Hour})
	background(t, p)
	nc := e.connect(t, "test")
	cons := waitForConsumer(t, nc, projections.DefaultDurable)

	s := newSim("fr")
	var l *lane
	head := appendSteps(t, e.store, record(t, s, func() {
		s.createPool("wp_one", "one")
		l = s.newLane("alpha", "wp_one")
		for k := range 9 {
			l.scenario(k)
		}
	}))
	await.Until(t, 20*time.Second, "every projection at the head", func() bool {
		for _, n := range projections.Names() {
			if checkpoint(t, e.pool, n).Before(head) {
				return false
			}
		}
		return true
	})
	if v, err := e.q.GetStack(ctx, "alpha"); err != nil || v.Version != s.versions[l.stackID] {
		t.Fatalf("stack = %+v, %v", v, err)
	}
	before := checksums(t, e.pool)
	cps := map[string]eventstore.Cursor{}
	for _, n := range projections.Names() {
		cps[n] = checkpoint(t, e.pool, n)
	}

	// Feed the same events again: republished messages, and catch-ups.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range all {
		msg := nats.NewMsg(eventstore.Subject(ev))
		msg.Data = []byte(fmt.Sprintf(`{"id":%q,"position":%d,"tx":%d}`, ev.ID, ev.Position, ev.Tx))
		msg.Header.Set(eventstore.HeaderPosition, strconv.FormatInt(ev.Position, 10))
		msg.Header.Set(eventstore.HeaderTx, strconv.FormatInt(ev.Tx, 10))
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("again-"+ev.ID)); err != nil {
			t.Fatal(err)
		}
	}
	await.Until(t, 20*time.Second, "the projector acknowledges the republished events", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= info.Delivered.Stream && info.Delivered.Stream > uint64(len(all))
	})
	for range 2 {
		catchUp(t, e)
	}
	sameChecksums(t, "after feeding the events again", checksums(t, e.pool), before)
	for _, n := range projections.Names() {
		if got := checkpoint(t, e.pool, n); got != cps[n] {
			t.Errorf("checkpoint of %s moved from %v to %v", n, cps[n], got)
		}
	}
}

type mysteryHappened struct {
	Clue  string    `json:"clue"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

func TestUnknownEventTypesAreLoggedAndSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// A newer writer knows an event type this projector's registry does not.
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister("MysteryHappened", 1, mysteryHappened{})
	newer := eventstore.New(e.pool, reg)
	t.Cleanup(newer.Close)

	s := newSim("uk")
	var l *lane
	appendSteps(t, newer, record(t, s, func() {
		s.createPool("wp_one", "one")
		l = s.newLane("alpha", "wp_one")
	}))
	mystery, err := newer.Append(ctx, eventstore.Stream{Type: eventstore.StreamStack, ID: l.stackID}, s.versions[l.stackID],
		mysteryHappened{Clue: "footprints", At: s.now(), Actor: "user:holmes"})
	if err != nil {
		t.Fatal(err)
	}
	s.versions[l.stackID]++
	head := appendSteps(t, newer, record(t, s, func() {
		l.stackCmd(stack.Lock{Note: "after the mystery", Actor: l.user, At: s.now()})
	}))

	var logs logBuffer
	p := e.projector(t, projections.Config{Logger: logs.logger()})
	if err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range projections.Names() {
		if c := checkpoint(t, e.pool, n); c != head {
			t.Errorf("checkpoint of %s = %v, want the head %v", n, c, head)
		}
	}
	v, err := e.q.GetStack(ctx, l.stackID)
	if err != nil {
		t.Fatal(err)
	}
	if v.ManualLock == nil || v.Version != s.versions[l.stackID] {
		t.Errorf("stack after the unknown event = %+v", v)
	}
	want := fmt.Sprintf(`"position":%d`, mystery[0].Position)
	if out := logs.String(); !strings.Contains(out, "MysteryHappened") || !strings.Contains(out, want) {
		t.Errorf("log does not report the skipped event at %s:\n%s", want, out)
	}
}

// flaky is a projection that fails on StackEnvSet events while fail is set.
type flaky struct {
	fail     *atomic.Bool
	attempts *atomic.Int64
}

func (flaky) Name() string     { return "flaky" }
func (flaky) Tables() []string { return []string{"flaky_seen"} }
func (f flaky) Apply(b *pgx.Batch, e eventstore.Event, _ any) error {
	if e.StreamType != eventstore.StreamStack {
		return nil
	}
	b.Queue("INSERT INTO flaky_seen (position, event_type) VALUES ($1, $2)", e.Position, e.Type)
	if e.Type == "StackEnvSet" && f.fail.Load() {
		f.attempts.Add(1)
		b.Queue("SELECT 1 / (count(*) - count(*)) FROM flaky_seen")
	}
	return nil
}

func TestFailingApplyIsRetriedWithoutSkipping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, "CREATE TABLE flaky_seen (position bigint PRIMARY KEY, event_type text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	f := flaky{fail: &atomic.Bool{}, attempts: &atomic.Int64{}}
	f.fail.Store(true)
	s := newSim("fl")
	var l *lane
	before := appendSteps(t, e.store, record(t, s, func() {
		s.createPool("wp_one", "one")
		l = s.newLane("alpha", "wp_one")
	}))
	var logs logBuffer
	all := append(projections.All(), f)
	p := e.projector(t, projections.Config{Projections: all, Logger: logs.logger(),
		CatchUpInterval: 50 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if c := checkpoint(t, e.pool, "flaky"); c != before {
		t.Fatalf("flaky checkpoint %v, want %v", c, before)
	}

	poison, err := e.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamStack, ID: l.stackID}, s.versions[l.stackID],
		stack.StackEnvSet{Key: "A", Name: "A", Scope: stack.ScopeAll, Value: "1", At: s.now(), Actor: l.user})
	if err != nil {
		t.Fatal(err)
	}
	s.versions[l.stackID]++
	head := appendSteps(t, e.store, record(t, s, func() {
		l.stackCmd(stack.Lock{Actor: l.user, At: s.now()})
	}))
	background(t, p)
	await.Until(t, 20*time.Second, "three failed attempts", func() bool { return f.attempts.Load() >= 3 })
	if c := checkpoint(t, e.pool, "flaky"); !c.Before(poison[0].Cursor()) {
		t.Errorf("flaky checkpoint %v went past the failing event at %v", c, poison[0].Cursor())
	}
	var seen int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM flaky_seen WHERE position >= $1", poison[0].Position).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != 0 {
		t.Errorf("%d rows of the failing page were committed", seen)
	}
	// The other projections do not wait for the failing one.
	await.Until(t, 10*time.Second, "the stacks projection at the head", func() bool {
		return checkpoint(t, e.pool, projections.StacksName) == head
	})
	if want := fmt.Sprintf("apply event at position %d (StackEnvSet", poison[0].Position); !strings.Contains(logs.String(), want) {
		t.Errorf("the failure log does not name position %d:\n%s", poison[0].Position, logs.String())
	}

	f.fail.Store(false)
	await.Until(t, 10*time.Second, "the flaky projection at the head", func() bool {
		return checkpoint(t, e.pool, "flaky") == head
	})
	var total int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM flaky_seen").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if want := int(s.versions[l.stackID]); total != want {
		t.Errorf("flaky saw %d stack events, want %d", total, want)
	}
}

func TestProjectorConfigValidate(t *testing.T) {
	t.Parallel()
	err := projections.Config{Durable: "a.b", PageSize: -1, RetryMin: time.Second, RetryMax: time.Millisecond,
		Projections: []projections.Projection{flaky{}, flaky{}}}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"pool is required", "store is required", "NATS connection is required", "durable", "page size", "retry max", "appears twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := projections.NewProjector(projections.Config{}); err == nil {
		t.Error("NewProjector accepted an empty config")
	}
	if !errors.Is(projections.Rebuild(context.Background(), nil, nil, nil, "nope"), projections.ErrUnknownProjection) {
		t.Error("Rebuild of an unknown projection is not ErrUnknownProjection")
	}
}
