package workerapi

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"gocloud.dev/blob"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// cleanupQueue is the NATS queue group of the workspace clean-up: one
// server replica deletes each workspace.
const cleanupQueue = "workspace-cleanup"

// workspaceEnds are the relayed events after which a saved workspace is no
// longer needed: a run that was UNCONFIRMED ends FINISHED or FAILED (after
// its apply) or DISCARDED.
var workspaceEnds = []string{
	run.RunFinished{}.EventType(), run.RunFailed{}.EventType(), run.RunDiscarded{}.EventType(),
}

// CleanUpWorkspaces deletes the saved workspace of every run that ends,
// until ctx ends. It follows relayed events over plain NATS, at most once:
// a deletion missed while no server listened leaves the object behind (it
// is sealed to the pool's key and unreadable to anyone else). It fails when
// a subscription closes, for its supervisor to run it again.
func CleanUpWorkspaces(ctx context.Context, nc *nats.Conn, bucket *blob.Bucket, log *slog.Logger) error {
	store := executor.BucketStore{Bucket: bucket}
	msgs := make(chan *nats.Msg, 64)
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, t := range workspaceEnds {
		sub, err := nc.ChanQueueSubscribe(eventstore.SubjectPrefix+"."+eventstore.StreamRun+".*."+t, cleanupQueue, msgs)
		if err != nil {
			return fmt.Errorf("workspace clean-up: subscribe: %w", err)
		}
		subs = append(subs, sub)
	}
	lost := bus.WatchClosed(subs...)
	for {
		select {
		case <-ctx.Done():
			return nil
		case subject := <-lost:
			return fmt.Errorf("workspace clean-up: subscription to %s closed", subject)
		case m := <-msgs:
			ev, err := eventstore.DecodeMessage(m.Data)
			if err != nil {
				log.WarnContext(ctx, "workspace clean-up: undecodable event", "subject", m.Subject, "err", err)
				continue
			}
			if err := store.Delete(ctx, ev.StreamID); err != nil {
				log.WarnContext(ctx, "workspace clean-up failed", "run_id", ev.StreamID, "err", err)
			}
		}
	}
}
