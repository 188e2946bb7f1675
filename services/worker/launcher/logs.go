package launcher

import (
	"encoding/json"
	"sync"
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

const (
	// liveLogDelay is how long a log line may wait for the lines that
	// follow it to travel in the same message: the live tail lags by at
	// most this much, and a phase's burst of output costs a few messages
	// instead of one per line.
	liveLogDelay = 20 * time.Millisecond
	// liveLogBytes bounds the lines of one message (a longer line goes
	// alone).
	liveLogBytes = 32 << 10
	// liveLogAckTimeout is how long a message of lines waits for its
	// acknowledgement: a phase's result waits for those of its lines, and
	// a NATS cluster elects a new stream leader well within it.
	liveLogAckTimeout = 15 * time.Second
)

// liveLog sends a run's masked log lines out over NATS, the live tail kept
// in the RUN_LOGS stream: the lines of one phase that come within
// liveLogDelay of the first, up to liveLogBytes, go as one message, joined
// by newlines (the protocol's run logs). It is safe for concurrent use.
type liveLog struct {
	l       *Launcher
	runID   string
	stackID string

	mu     sync.Mutex
	phase  run.Phase
	lines  int
	buf    []byte
	timer  *time.Timer
	failed bool // a publish failed: logged once per run, the stored phase log has every line
}

// add sends line out with the next message (and, when configured, to
// stdout at once).
func (g *liveLog) add(phase run.Phase, line string) {
	if g.l.cfg.RunLogs != nil {
		if b, err := json.Marshal(stdoutLine{RunID: g.runID, StackID: g.stackID, Phase: phase, TS: time.Now().UTC(), Msg: line}); err == nil {
			g.l.stdoutMu.Lock()
			_, _ = g.l.cfg.RunLogs.Write(append(b, '\n'))
			g.l.stdoutMu.Unlock()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lines > 0 && (phase != g.phase || len(g.buf)+1+len(line) > liveLogBytes) {
		g.sendLocked()
	}
	if g.lines > 0 {
		g.buf = append(g.buf, '\n')
	}
	g.phase, g.lines = phase, g.lines+1
	g.buf = append(g.buf, line...)
	if g.timer == nil {
		g.timer = time.AfterFunc(liveLogDelay, g.flush)
	}
}

// flush sends the lines waiting, if any.
func (g *liveLog) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sendLocked()
}

func (g *liveLog) sendLocked() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if g.lines == 0 {
		return
	}
	m := nats.NewMsg(protocol.RunLogsSubject(g.l.cfg.Token.PoolID, g.runID))
	m.Header.Set(protocol.HeaderPhase, string(g.phase))
	m.Data = g.buf
	g.buf, g.lines = nil, 0
	if _, err := g.l.js.PublishMsgAsync(m); err != nil && !g.failed {
		g.failed = true
		g.l.logger().Warn("live log lines could not be published", "run_id", g.runID, "err", err)
	}
}
