package scheduler

import (
	"sync"
	"time"
)

// hints are the runs and workers named by recent events. The read models
// are updated by the projector, which may not have applied an event yet when
// the scheduler hears of it; a hint keeps the aggregate a candidate until a
// pass has seen it settled (assigned, or not assignable) or it expires.
type hints struct {
	ttl     time.Duration
	mu      sync.Mutex
	runs    map[string]time.Time // id → expiry
	workers map[string]time.Time
}

func newHints(ttl time.Duration) *hints {
	return &hints{ttl: ttl, runs: map[string]time.Time{}, workers: map[string]time.Time{}}
}

func (h *hints) addRun(id string, now time.Time) { h.add(h.runs, id, now) }

func (h *hints) addWorker(id string, now time.Time) { h.add(h.workers, id, now) }

func (h *hints) add(m map[string]time.Time, id string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m[id] = now.Add(h.ttl)
}

func (h *hints) forgetRun(id string) { h.forget(h.runs, id) }

func (h *hints) forgetWorker(id string) { h.forget(h.workers, id) }

func (h *hints) forget(m map[string]time.Time, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(m, id)
}

// snapshot drops expired hints and returns the live run and worker ids.
func (h *hints) snapshot(now time.Time) (runs, workers []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	live := func(m map[string]time.Time) []string {
		var out []string
		for id, exp := range m {
			if now.After(exp) {
				delete(m, id)
				continue
			}
			out = append(out, id)
		}
		return out
	}
	return live(h.runs), live(h.workers)
}
