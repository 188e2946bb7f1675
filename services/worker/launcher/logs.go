package launcher

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// stdoutLine is a run log line as GANTRY_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED
// writes it.
type stdoutLine struct {
	RunID   string    `json:"run_id"`
	StackID string    `json:"stack_id"`
	Phase   run.Phase `json:"phase"`
	TS      time.Time `json:"ts"`
	Msg     string    `json:"msg"`
}

// publishLine sends one masked log line of a run out over NATS (the live
// tail, kept in the RUN_LOGS stream) and, when configured, to stdout. A
// failure to publish is logged once per run: the phase's stored log still
// has every line.
func (l *Launcher) publishLine(runID, stackID string, phase run.Phase, line string, failed *bool) {
	if l.cfg.RunLogs != nil {
		if b, err := json.Marshal(stdoutLine{RunID: runID, StackID: stackID, Phase: phase, TS: time.Now().UTC(), Msg: line}); err == nil {
			l.stdoutMu.Lock()
			_, _ = l.cfg.RunLogs.Write(append(b, '\n'))
			l.stdoutMu.Unlock()
		}
	}
	m := nats.NewMsg(protocol.RunLogsSubject(l.cfg.Token.PoolID, runID))
	m.Header.Set(protocol.HeaderPhase, string(phase))
	m.Data = []byte(line)
	if _, err := l.js.PublishMsgAsync(m); err != nil && !*failed {
		*failed = true
		l.logger().Warn("live log lines could not be published", "run_id", runID, "err", err)
	}
}
