package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// A projector whose durable consumer is deleted, which ends its
// subscription on the server, creates the consumer again and is woken by
// relayed events once more. The periodic catch-up is off: only messages
// move the projections.
func TestProjectorRecreatesADeletedConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.startRelay(t)
	p := e.projector(t, projections.Config{CatchUpInterval: time.Hour})
	background(t, p)
	nc := e.connect(t, "test")
	waitForConsumer(t, nc, projections.DefaultDurable)
	atHead := func(head eventstore.Cursor) func() bool {
		return func() bool {
			for _, n := range projections.Names() {
				if checkpoint(t, e.pool, n).Before(head) {
					return false
				}
			}
			return true
		}
	}

	s := newSim("rc")
	head := appendSteps(t, e.store, record(t, s, func() { s.createPool("wp_one", "one") }))
	await.Until(t, 20*time.Second, "every projection at the head", atHead(head))

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, eventstore.EventsStream, projections.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	waitForConsumer(t, nc, projections.DefaultDurable)
	head = appendSteps(t, e.store, record(t, s, func() { s.createPool("wp_two", "two") }))
	await.Until(t, 20*time.Second, "every projection at the head after the consumer came back", atHead(head))
}

// A projectors' consumer that an earlier build made with its state on disk
// is made again in memory (NATS cannot change a consumer's storage in
// place), and wakes the projections. The periodic catch-up is off.
func TestProjectorReplacesAConsumerKeptOnDisk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.startRelay(t)
	nc := e.connect(t, "test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, 20*time.Second, "the relay's stream", func() bool {
		_, err := js.Stream(ctx, eventstore.EventsStream)
		return err == nil
	})
	if _, err := js.CreateOrUpdateConsumer(ctx, eventstore.EventsStream, jetstream.ConsumerConfig{
		Durable: projections.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	p := e.projector(t, projections.Config{CatchUpInterval: time.Hour})
	background(t, p)
	await.Until(t, 20*time.Second, "the consumer kept in memory", func() bool {
		c, err := js.Consumer(ctx, eventstore.EventsStream, projections.DefaultDurable)
		return err == nil && c.CachedInfo().Config.MemoryStorage
	})
	waitForConsumer(t, nc, projections.DefaultDurable)
	s := newSim("md")
	head := appendSteps(t, e.store, record(t, s, func() { s.createPool("wp_one", "one") }))
	await.Until(t, 20*time.Second, "every projection at the head", func() bool {
		for _, n := range projections.Names() {
			if checkpoint(t, e.pool, n).Before(head) {
				return false
			}
		}
		return true
	})
}
