package executor

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gantryhq/gantry/domain/run"
)

// maxLine bounds a line the executor waits for: longer output without a
// newline (a progress bar, binary data) is passed on in pieces, cut where no
// secret straddles the cut.
const maxLine = 64 << 10

// phaseLog is a phase's output: it masks each complete line, hands it to the
// Reporter and keeps it for the phase's result. Lines from the running
// process and the executor's own messages go through the same lock, so the
// Reporter sees them one at a time and in the order they are stored.
type phaseLog struct {
	phase run.Phase
	rep   Reporter
	mask  *masker

	mu  sync.Mutex
	buf bytes.Buffer
	// plan, when set, is the summary of the last "Plan:" line seen while
	// watchPlan was on (the tool's own plan output, not a hook's).
	watchPlan bool
	plan      *run.PlanSummary
}

func newPhaseLog(phase run.Phase, rep Reporter, mask *masker) *phaseLog {
	return &phaseLog{phase: phase, rep: rep, mask: mask}
}

// line masks one line (without its newline) and passes it on.
func (l *phaseLog) line(raw string) {
	masked := l.mask.mask(strings.TrimSuffix(raw, "\r"))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watchPlan {
		if s, ok := planLineSummary(raw); ok {
			l.plan = &s
		}
	}
	l.buf.WriteString(masked)
	l.buf.WriteByte('\n')
	l.rep.Log(l.phase, masked)
}

// watchPlanLine starts (on) or stops watching the lines for the tool's
// "Plan:" line, and returns the summary read from it, if one was seen.
func (l *phaseLog) watchPlanLine(on bool) (run.PlanSummary, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watchPlan = on
	if on {
		l.plan = nil
		return run.PlanSummary{}, false
	}
	if l.plan == nil {
		return run.PlanSummary{}, false
	}
	return *l.plan, true
}

// printf logs a message of the executor's own, one line per line of text.
func (l *phaseLog) printf(format string, args ...any) {
	for _, s := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		l.line(s)
	}
}

// bytes returns a copy of everything logged so far.
func (l *phaseLog) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

// pump reads a process's output until r ends, passing complete lines to l
// and calling touched whenever output arrives (the logs timeout's clock).
// Masking happens on complete lines, so a secret split across two reads is
// still masked.
func pump(r io.Reader, l *phaseLog, touched func()) {
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			touched()
			pending = append(pending, buf[:n]...)
			start := 0
			for {
				i := bytes.IndexByte(pending[start:], '\n')
				if i < 0 {
					break
				}
				l.line(string(pending[start : start+i]))
				start += i + 1
			}
			pending = append(pending[:0], pending[start:]...)
			for len(pending) > maxLine {
				cut, ok := l.mask.cut(pending, maxLine)
				if !ok {
					// Only overlapping occurrences of secrets all the way:
					// everything up to here is masked as one piece.
					cut = len(pending)
				}
				l.line(string(pending[:cut]))
				pending = append(pending[:0], pending[cut:]...)
			}
		}
		if err != nil {
			if len(pending) > 0 {
				l.line(string(pending))
			}
			return
		}
	}
}
