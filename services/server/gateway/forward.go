package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// forwardSubjects are the relayed events the gateway passes on to workers.
var (
	stopRequestedSubject  = eventstore.SubjectPrefix + "." + eventstore.StreamRun + ".*." + run.RunStopRequested{}.EventType()
	cycleRequestedSubject = eventstore.SubjectPrefix + "." + eventstore.StreamWorkerPool + ".*." + workerpool.WorkerPoolCycleRequested{}.EventType()
	resetSubject          = eventstore.SubjectPrefix + "." + eventstore.StreamWorkerPool + ".*." + workerpool.WorkerPoolReset{}.EventType()
)

// forwardEvents subscribes to the relayed events that concern workers (stop
// requests, pool cycles and resets) and hands them to msgs; one replica of
// the queue group forwards each.
func (g *Gateway) forwardEvents(msgs chan *nats.Msg) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, subject := range []string{stopRequestedSubject, cycleRequestedSubject, resetSubject} {
		sub, err := g.cfg.NATS.ChanQueueSubscribe(subject, QueueGroup, msgs)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, fmt.Errorf("gateway: subscribe to %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// forward tells workers what a relayed event asks of them.
func (g *Gateway) forward(ctx context.Context, m *nats.Msg) {
	ev, err := eventstore.DecodeMessage(m.Data)
	if err != nil {
		g.log.WarnContext(ctx, "undecodable relayed event", "subject", m.Subject, "err", err)
		return
	}
	var subject string
	var body any
	switch ev.Type {
	case run.RunStopRequested{}.EventType():
		var e run.RunStopRequested
		if err := json.Unmarshal(ev.Payload, &e); err != nil {
			g.log.WarnContext(ctx, "undecodable stop request", "run_id", ev.StreamID, "err", err)
			return
		}
		if e.WorkerID == "" || e.PoolID == "" {
			return // no worker holds the run; nobody to tell
		}
		subject = protocol.WorkerSubject(e.PoolID, e.WorkerID, protocol.KindStop)
		body = protocol.StopMessage{RunID: ev.StreamID, Note: e.Note}
	case workerpool.WorkerPoolCycleRequested{}.EventType():
		subject = protocol.BroadcastSubject(ev.StreamID)
		body = protocol.BroadcastMessage{Kind: protocol.BroadcastCycle}
	case workerpool.WorkerPoolReset{}.EventType():
		// The pool's workers registered with the old secret: they end now,
		// whoever still holds a connection made with it.
		g.endWorkersOf(ctx, ev.StreamID, "the worker pool was reset")
		subject = protocol.BroadcastSubject(ev.StreamID)
		body = protocol.BroadcastMessage{Kind: protocol.BroadcastReset}
	default:
		return
	}
	data, err := json.Marshal(body)
	if err == nil {
		err = g.cfg.NATS.Publish(subject, data)
	}
	if err != nil {
		g.log.WarnContext(ctx, "could not tell workers", "subject", subject, "event", ev.Type, "err", err)
		return
	}
	g.log.InfoContext(ctx, "told workers", "subject", subject, "event", ev.Type, "stream_id", ev.StreamID)
}

// endWorkersOf deregisters every live worker of pool (those with a
// heartbeat row): their runs go back to READY or end FAILED, as at an exit.
func (g *Gateway) endWorkersOf(ctx context.Context, pool, note string) {
	rows, err := g.cfg.Pool.Query(ctx, `SELECT worker_id FROM worker_heartbeats WHERE pool_id = $1`, pool)
	if err != nil {
		g.log.ErrorContext(ctx, "could not find the workers of a reset pool", "pool_id", pool, "err", err)
		return
	}
	workers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		g.log.ErrorContext(ctx, "could not find the workers of a reset pool", "pool_id", pool, "err", err)
		return
	}
	for _, w := range workers {
		if err := g.exit(ctx, pool, protocol.ExitReport{WorkerID: w, Note: note}); err != nil && !errors.Is(err, worker.ErrGone) {
			g.log.ErrorContext(ctx, "could not end a worker of a reset pool", "pool_id", pool, "worker_id", w, "err", err)
			continue
		}
		g.log.InfoContext(ctx, "worker of a reset pool ended", "pool_id", pool, "worker_id", w)
	}
}
