package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/eventstore"
)

// consumerAckWait is how long JetStream waits for an acknowledgement before
// it redelivers: generous, since a batch's catch-up may apply many pages.
const consumerAckWait = time.Minute

// consume takes batches of relayed events from the shared durable consumer
// until ctx ends, reconnecting with backoff after failures. Each batch is
// only a wake-up and an upper bound: the projections advance, from the
// store, to the highest cursor in it, and the messages are acknowledged once
// they have; otherwise they come back after the failing projection's
// backoff.
func (p *Projector) consume(ctx context.Context) {
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := p.consumeSession(ctx, bo)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("consume relayed events; retrying", "durable", p.cfg.Durable, "err", err)
		sleep(ctx, bo.NextBackOff())
	}
}

// consumeSession consumes until ctx ends or the consumer fails. Messages
// arrive as they are published; a batch is whatever has arrived by the time
// the previous one is done (at least one message), so a lone event is
// projected at once and a burst costs few catch-ups.
func (p *Projector) consumeSession(ctx context.Context, bo backoff.BackOff) error {
	cons, err := p.consumer(ctx)
	if err != nil {
		return fmt.Errorf("create the durable consumer: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	msgs := make(chan jetstream.Msg, p.cfg.BatchSize)
	lost := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-sctx.Done():
		}
	}, jetstream.PullMaxMessages(p.cfg.BatchSize), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			select {
			case lost <- err:
			default:
			}
			return
		}
		// The client keeps pulling through transient errors (missed
		// heartbeats, reconnects); the periodic catch-up covers the gap.
		p.log.Debug("consume relayed events", "err", err)
	}))
	if err != nil {
		cancel()
		return fmt.Errorf("consume: %w", err)
	}
	defer func() {
		cancel() // unblocks the handler
		cc.Stop()
		<-cc.Closed()
	}()
	bo.Reset()
	for {
		var batch []jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case err := <-lost:
			return err
		case <-cc.Closed():
			return errors.New("the consumer stopped")
		case m := <-msgs:
			batch = append(batch, m)
		}
	more:
		for len(batch) < p.cfg.BatchSize {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break more
			}
		}
		p.handle(ctx, batch)
	}
}

// handle advances the projections to the highest cursor of the batch and
// acknowledges it, or asks for it again after the backoff.
func (p *Projector) handle(ctx context.Context, msgs []jetstream.Msg) {
	bound, ok := highestCursor(msgs)
	if !ok {
		// Unreadable messages carry no bound: a catch-up to the head covers them.
		bound = unbounded
	}
	done, wait := p.advance(ctx, bound)
	for _, m := range msgs {
		var err error
		if done {
			err = m.Ack()
		} else {
			err = m.NakWithDelay(max(wait, p.cfg.RetryMin))
		}
		if err != nil && ctx.Err() == nil {
			// Unacknowledged messages are redelivered: harmless.
			p.log.Debug("acknowledge relayed event", "err", err)
		}
	}
}

// consumer creates (or binds to) the durable consumer. It delivers only
// events published from its creation on: the catch-ups cover the rest.
func (p *Projector) consumer(ctx context.Context) (jetstream.Consumer, error) {
	js, err := jetstream.New(p.cfg.NATS)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := jetstream.ConsumerConfig{
		Durable:       p.cfg.Durable,
		Description:   "Gantry projectors: wake-ups for the read models",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckWait:       consumerAckWait,
		MaxAckPending: 10 * p.cfg.BatchSize,
		// Its messages are wake-ups the catch-ups stand in for: its state
		// (what was acknowledged) is kept in memory, saving a state write
		// per acknowledgement. A consumer lost with a NATS restart is made
		// again by the next session.
		MemoryStorage: true,
	}
	c, err := js.CreateOrUpdateConsumer(cctx, eventstore.EventsStream, cfg)
	if err == nil {
		return c, nil
	}
	// Earlier builds kept this consumer's state on disk, and NATS cannot
	// change a consumer's storage in place: such a consumer is made again.
	old, oerr := js.Consumer(cctx, eventstore.EventsStream, p.cfg.Durable)
	if oerr != nil || old.CachedInfo().Config.MemoryStorage {
		return nil, err
	}
	p.log.Info("recreating the projectors' consumer to keep its state in memory", "durable", p.cfg.Durable)
	if derr := js.DeleteConsumer(cctx, eventstore.EventsStream, p.cfg.Durable); derr != nil && !errors.Is(derr, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("delete the consumer kept on disk: %w", derr)
	}
	return js.CreateOrUpdateConsumer(cctx, eventstore.EventsStream, cfg)
}

// highestCursor returns the highest commit-order cursor among the messages,
// from the relay's headers (falling back to the body); ok is false when a
// message carries none.
func highestCursor(msgs []jetstream.Msg) (c eventstore.Cursor, ok bool) {
	for _, m := range msgs {
		mc, err := messageCursor(m)
		if err != nil {
			return eventstore.Cursor{}, false
		}
		if c.Before(mc) {
			c = mc
		}
	}
	return c, true
}

func messageCursor(m jetstream.Msg) (eventstore.Cursor, error) {
	h := m.Headers()
	tx, errTx := strconv.ParseInt(h.Get(eventstore.HeaderTx), 10, 64)
	pos, errPos := strconv.ParseInt(h.Get(eventstore.HeaderPosition), 10, 64)
	if errTx == nil && errPos == nil {
		return eventstore.Cursor{Tx: tx, Position: pos}, nil
	}
	e, err := eventstore.DecodeMessage(m.Data())
	if err != nil {
		return eventstore.Cursor{}, err
	}
	return e.Cursor(), nil
}
