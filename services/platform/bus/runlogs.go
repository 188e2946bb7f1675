package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// RunLogsStream is the JetStream stream that keeps the live log lines of every run (subjects
// protocol.AllRunLogs) for a while, so that a client asking for a run's log after the lines were
// published still gets them.
//
// The contract with launchers (package protocol): messages of one or more masked log lines
// of a phase, joined by "\n", on protocol.RunLogsSubject(pool, run), published through
// JetStream and acknowledged, with the phase (run.Phase) in protocol.HeaderPhase. A launcher
// stores each phase's full log in object storage (the worker API) and waits for the
// acknowledgement of every message before it reports the phase finished. So once a phase is
// reported finished its full log is in the bucket, and once a run is terminal every line of it
// is in this stream (unless expired).
const RunLogsStream = "RUN_LOGS"

// DefaultRunLogsMaxAge is how long RunLogsStream keeps lines unless configured: the full logs
// of finished phases stay in object storage.
const DefaultRunLogsMaxAge = 24 * time.Hour

// EnsureRunLogsStream creates RunLogsStream with file storage, or updates its configuration to
// keep messages for maxAge (DefaultRunLogsMaxAge when 0) on replicas servers of the cluster (1
// when 0). Every server calls it at start; calling it again with the same settings changes
// nothing.
func EnsureRunLogsStream(ctx context.Context, js jetstream.JetStream, maxAge time.Duration, replicas int) error {
	if maxAge < 0 {
		return fmt.Errorf("run logs stream: max age %s must not be negative", maxAge)
	}
	if maxAge == 0 {
		maxAge = DefaultRunLogsMaxAge
	}
	if replicas == 0 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        RunLogsStream,
		Description: "live log lines of runs",
		Subjects:    []string{protocol.AllRunLogs},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      maxAge,
		Replicas:    replicas,
	})
	if err != nil {
		return fmt.Errorf("create or update JetStream stream %s: %w", RunLogsStream, err)
	}
	return nil
}
