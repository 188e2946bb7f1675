package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/poolauth"
)

// enforcePoolAuth lets launchers connect to an embedded NATS with their
// pool's secret, and returns the component that closes a pool's connections
// when the pool is reset or deleted. The events arrive on the relay's
// subjects, so the process that runs the embedded server acts on resets
// made through any API replica. On an external NATS the auth callout does
// both (docs/nats.md), and there is no component.
func enforcePoolAuth(b *bus.Bus, nc *nats.Conn, aggs *aggregate.Repository, log *slog.Logger) *supervisor.Component {
	if b.Embedded() == nil {
		return nil
	}
	b.SetPoolVerifier(poolauth.New(aggs))
	subject := fmt.Sprintf("%s.%s.*.*", eventstore.SubjectPrefix, eventstore.StreamWorkerPool)
	onEvent := func(m *nats.Msg) {
		e, err := eventstore.DecodeMessage(m.Data)
		if err != nil {
			log.Warn("pool auth: undecodable event", "subject", m.Subject, "err", err)
			return
		}
		if e.Type != (workerpool.WorkerPoolReset{}).EventType() && e.Type != (workerpool.WorkerPoolDeleted{}).EventType() {
			return
		}
		if _, err := b.DisconnectPool(e.StreamID); err != nil {
			log.Warn("pool auth: close connections", "pool_id", e.StreamID, "err", err)
		}
	}
	return &supervisor.Component{Name: "pool-resets", Run: func(ctx context.Context) error {
		sub, err := nc.Subscribe(subject, onEvent)
		if err != nil {
			return fmt.Errorf("subscribe to pool resets: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		select {
		case <-ctx.Done():
			return nil
		case subject := <-bus.WatchClosed(sub):
			return fmt.Errorf("pool resets: subscription to %s closed", subject)
		}
	}}
}
