package executor

import (
	"context"
	"fmt"
	"io"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
)

// WorkspaceStore keeps the encrypted workspaces of UNCONFIRMED runs, where
// every worker of the pool can read them.
type WorkspaceStore interface {
	// Create returns a writer of run runID's saved workspace. The object
	// exists once Close returned nil; if ctx is canceled before, it must not
	// be created (gocloud.dev's blob.Writer behaves so).
	Create(ctx context.Context, runID string) (io.WriteCloser, error)
	// Open returns a reader of run runID's saved workspace.
	Open(ctx context.Context, runID string) (io.ReadCloser, error)
}

// WorkspaceKey is the object key of run runID's saved workspace.
func WorkspaceKey(runID string) string { return "runs/" + runID + "/workspace.tar.gz.sealed" }

// PhaseLogKey is the object key of the full log of one phase of a run.
func PhaseLogKey(runID string, phase run.Phase) string {
	return "runs/" + runID + "/logs/" + string(phase) + ".log"
}

// BucketStore is a WorkspaceStore in object storage, at WorkspaceKey.
type BucketStore struct {
	Bucket *blob.Bucket
}

// Create implements WorkspaceStore.
func (s BucketStore) Create(ctx context.Context, runID string) (io.WriteCloser, error) {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return nil, err
	}
	w, err := s.Bucket.NewWriter(ctx, WorkspaceKey(runID), &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, fmt.Errorf("store the workspace of %s: %w", runID, err)
	}
	return w, nil
}

// Open implements WorkspaceStore.
func (s BucketStore) Open(ctx context.Context, runID string) (io.ReadCloser, error) {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return nil, err
	}
	r, err := s.Bucket.NewReader(ctx, WorkspaceKey(runID), nil)
	if err != nil {
		return nil, fmt.Errorf("read the saved workspace of %s: %w", runID, err)
	}
	return r, nil
}

// Delete removes run runID's saved workspace, once it was applied or
// discarded. A workspace that does not exist is not an error.
func (s BucketStore) Delete(ctx context.Context, runID string) error {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return err
	}
	err := s.Bucket.Delete(ctx, WorkspaceKey(runID))
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete the saved workspace of %s: %w", runID, err)
	}
	return nil
}

// StorePhaseLog stores the full log of one phase of a run at PhaseLogKey.
func StorePhaseLog(ctx context.Context, bucket *blob.Bucket, runID string, phase run.Phase, log []byte) error {
	if err := ids.Run.Validate("run_id", runID); err != nil {
		return err
	}
	if !phase.Valid() {
		return fmt.Errorf("store a phase log: unknown phase %q", phase)
	}
	opts := &blob.WriterOptions{ContentType: "text/plain; charset=utf-8"}
	if err := bucket.WriteAll(ctx, PhaseLogKey(runID, phase), log, opts); err != nil {
		return fmt.Errorf("store the %s log of %s: %w", phase, runID, err)
	}
	return nil
}
