package gateway

import (
	"sync"
	"time"
)

// heartbeatHealth tracks since when this gateway could both receive
// heartbeats (its NATS connection held) and record them (its database
// answered). Silence is counted only from then: a worker is not lost for
// an outage of the infrastructure between it and the server, however long
// (a database upgrade, a NATS node replaced), only once the heartbeat
// timeout has run with the infrastructure up.
type heartbeatHealth struct {
	mu         sync.Mutex
	upSince    time.Time
	reconnects uint64 // the NATS connection's reconnect count when last looked at
}

// down records that heartbeats could not be received or recorded at t.
func (h *heartbeatHealth) down(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.After(h.upSince) {
		h.upSince = t
	}
}

// observeNATS records an outage of the NATS connection: it is not
// connected now, or reconnected since the last look (the outage came and
// went between two looks).
func (h *heartbeatHealth) observeNATS(t time.Time, connected bool, reconnects uint64) {
	h.mu.Lock()
	changed := reconnects != h.reconnects
	h.reconnects = reconnects
	h.mu.Unlock()
	if !connected || changed {
		h.down(t)
	}
}

// since is when heartbeats last became receivable and recordable.
func (h *heartbeatHealth) since() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.upSince
}
