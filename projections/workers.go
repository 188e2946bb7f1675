package projections

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
)

// workersProjection maintains rm_workers from the worker events. Lost and
// exited workers keep their row, marked gone; views leave them out.
type workersProjection struct{}

func (workersProjection) Name() string     { return WorkersName }
func (workersProjection) Tables() []string { return []string{"rm_workers"} }

// $1 is the worker id, $2 the event's time (updated_at), $3 the worker stream's version.
const (
	workerRegisteredSQL = `INSERT INTO rm_workers (id, updated_at, version, registered_at, pool_id, metadata, launcher_version)
		VALUES ($1, $2, $3, $2, $4, $5, $6)`
	workerDrainedSQL     = `UPDATE rm_workers SET updated_at = $2, version = $3, drained = $4 WHERE id = $1`
	workerRunAssignedSQL = `UPDATE rm_workers SET updated_at = $2, version = $3, run_id = $4 WHERE id = $1`
	workerRunFinishedSQL = `UPDATE rm_workers SET updated_at = $2, version = $3,
		run_id = CASE WHEN run_id = $4 THEN '' ELSE run_id END WHERE id = $1`
	workerGoneSQL    = `UPDATE rm_workers SET updated_at = $2, version = $3, gone = $4, gone_at = $2, gone_note = $5 WHERE id = $1`
	workerVersionSQL = `UPDATE rm_workers SET version = $2 WHERE id = $1`
)

func (workersProjection) Apply(b *pgx.Batch, e eventstore.Event, data any) error {
	if e.StreamType != eventstore.StreamWorker {
		return nil
	}
	id, v := e.StreamID, e.Version
	switch d := data.(type) {
	case worker.WorkerRegistered:
		md := d.Metadata
		if md == nil {
			md = map[string]string{}
		}
		metadata, err := json.Marshal(md)
		if err != nil {
			return fmt.Errorf("encode worker metadata: %w", err)
		}
		b.Queue(workerRegisteredSQL, id, d.At, v, d.PoolID, string(metadata), d.LauncherVersion)
	case worker.WorkerDrained:
		b.Queue(workerDrainedSQL, id, d.At, v, true)
	case worker.WorkerUndrained:
		b.Queue(workerDrainedSQL, id, d.At, v, false)
	case worker.WorkerRunAssigned:
		b.Queue(workerRunAssignedSQL, id, d.At, v, d.RunID)
	case worker.WorkerRunFinished:
		b.Queue(workerRunFinishedSQL, id, d.At, v, d.RunID)
	case worker.WorkerLost:
		b.Queue(workerGoneSQL, id, d.At, v, string(worker.Lost), d.Note)
	case worker.WorkerExited:
		b.Queue(workerGoneSQL, id, d.At, v, string(worker.Exited), d.Note)
	default:
		b.Queue(workerVersionSQL, id, v)
	}
	return nil
}
