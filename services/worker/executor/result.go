package executor

import (
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

// Exit codes of phases that did not end with a process's own exit status.
const (
	// ExitNoProcess is the exit code of a phase that failed outside any
	// process (a clone target that cannot be created, a missing tool, a
	// workspace that cannot be decrypted). The note says why.
	ExitNoProcess = -1
	// exitSignalBase + N is the exit code of a process killed by signal N,
	// as shells report it (130 for SIGINT, 137 for SIGKILL).
	exitSignalBase = 128
)

// PhaseResult is the outcome of one phase.
type PhaseResult struct {
	Phase run.Phase
	// ExitCode is 0 when the phase succeeded. Otherwise it is the exit
	// status of the command that failed (a hook's or the tool's), 128+N when
	// that process was killed by signal N, or ExitNoProcess. The planning
	// tool's exit status 2 (changes present) is reported as 0 with
	// HasChanges, as run.PhaseFinished expects.
	ExitCode   int
	HasChanges bool // PLANNING only: the plan has changes
	Started    time.Time
	Duration   time.Duration
	// Note says why the phase failed or was interrupted; "" if it succeeded.
	Note string
	// Log is the phase's full output, secrets masked, one line per "\n".
	Log []byte
	// ChangedResources, for the PLANNING of a drift run whose plan has
	// changes, are the addresses of the resources it would change.
	ChangedResources []string
	// Plan counts what the plan changes (PLANNING only, once the plan
	// succeeded); nil when the tool could not tell.
	Plan *run.PlanSummary
	// Outputs are the run's outputs, read after a successful APPLYING or
	// PERFORMING (see outputs.go); nil for the other phases and when there
	// are none.
	Outputs []run.Output
}

// Result is the outcome of a run's part on this worker.
type Result struct {
	// Status is FINISHED, FAILED, STOPPED, or UNCONFIRMED when a TRACKED
	// run's plan has changes and it does not deploy automatically (its
	// workspace is then saved in the WorkspaceStore).
	Status run.Status
	// Note says why the run FAILED or was STOPPED, naming the timeout when
	// one ended it; "" otherwise.
	Note string
	// HasChanges reports whether the plan had changes.
	HasChanges bool
	// Phases lists the phases that ran, in order.
	Phases []PhaseResult
}

// Phase returns the result of phase p, if it ran.
func (r Result) Phase(p run.Phase) (PhaseResult, bool) {
	for _, ph := range r.Phases {
		if ph.Phase == p {
			return ph, true
		}
	}
	return PhaseResult{}, false
}
