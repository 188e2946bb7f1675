package protocol

import "github.com/gantryhq/gantry/domain/run"

// WorkerAPIPrefix is where the server serves the worker HTTP API, through
// which launchers keep objects in the server's object storage without
// holding bucket credentials. Every request authenticates with the pool's id
// and secret (HTTP Basic) and is served only for a run assigned to the pool.
const WorkerAPIPrefix = "/worker/v1/"

// WorkspacePath is the path, under WorkerAPIPrefix, of the sealed saved
// workspace of run runID: PUT stores it (streamed, while the run is not
// terminal), GET returns it (404 when there is none).
func WorkspacePath(runID string) string { return "runs/" + runID + "/workspace" }

// PhaseLogPath is the path, under WorkerAPIPrefix, of the full log of one
// phase of run runID: PUT stores it (text, while the run is not terminal).
func PhaseLogPath(runID string, phase run.Phase) string {
	return "runs/" + runID + "/logs/" + string(phase)
}
