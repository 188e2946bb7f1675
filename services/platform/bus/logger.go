package bus

import (
	"fmt"
	"log/slog"
	"sync"
)

// serverLogger routes nats-server's log lines to slog. Debug and trace stay off: they log every
// protocol message. Fatal is logged as an error and remembered instead of exiting the process,
// so that Start can report why the server did not become ready.
type serverLogger struct {
	logger *slog.Logger

	mu        sync.Mutex
	lastFatal string
}

func (l *serverLogger) Noticef(format string, v ...any) { l.logger.Info(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.logger.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.logger.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(string, ...any)           {}
func (l *serverLogger) Tracef(string, ...any)           {}

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.logger.Error(msg, "fatal", true)
	l.mu.Lock()
	l.lastFatal = msg
	l.mu.Unlock()
}

// fatal returns the last fatal message, or "".
func (l *serverLogger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastFatal
}
