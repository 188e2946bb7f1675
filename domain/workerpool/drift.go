package workerpool

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantryhq/gantry/domain/ids"
)

// ErrDriftLimit: the pool runs as many drift-detection runs as its drift
// run limit allows; the run waits for one of them to end.
var ErrDriftLimit = errors.New("the pool's drift-detection run limit is reached")

// StartDriftRun takes one of the pool's drift-run slots for a drift run
// given to one of its workers. It is refused with ErrDriftLimit when the
// limit is set (above 0) and every slot is taken; a run holding a slot
// already changes nothing.
type StartDriftRun struct {
	RunID string
	Actor string
	At    time.Time
}

// EndDriftRun gives back the slot of a drift run that ended or left its
// worker; for a run holding none it changes nothing.
type EndDriftRun struct {
	RunID string
	Actor string
	At    time.Time
}

func (StartDriftRun) isCommand() {}
func (EndDriftRun) isCommand()   {}

// WorkerPoolDriftRunStarted: a drift run took a slot.
type WorkerPoolDriftRunStarted struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// WorkerPoolDriftRunEnded: a drift run gave its slot back.
type WorkerPoolDriftRunEnded struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

func (WorkerPoolDriftRunStarted) EventType() string { return "WorkerPoolDriftRunStarted" }
func (WorkerPoolDriftRunEnded) EventType() string   { return "WorkerPoolDriftRunEnded" }

// DriftRuns lists the drift runs holding a slot.
func (s State) DriftRuns() []string { return slices.Clone(s.driftRuns) }

func (s State) startDriftRun(c StartDriftRun) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if err := ids.Run.Validate("run_id", c.RunID); err != nil {
		return nil, err
	}
	if slices.Contains(s.driftRuns, c.RunID) {
		return nil, nil
	}
	if s.driftRunLimit > 0 && len(s.driftRuns) >= s.driftRunLimit {
		return nil, fmt.Errorf("pool %s: %d of %d drift runs: %w", s.id, len(s.driftRuns), s.driftRunLimit, ErrDriftLimit)
	}
	return []Event{WorkerPoolDriftRunStarted{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
}

func (s State) endDriftRun(c EndDriftRun) ([]Event, error) {
	if err := ids.Run.Validate("run_id", c.RunID); err != nil {
		return nil, err
	}
	if !slices.Contains(s.driftRuns, c.RunID) {
		return nil, nil
	}
	return []Event{WorkerPoolDriftRunEnded{RunID: c.RunID, At: c.At, Actor: c.Actor}}, nil
}
