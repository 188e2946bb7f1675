package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MountedFileView is a mounted file of a stack, without its content.
type MountedFileView struct {
	Path      string    `json:"path"`
	Size      int64     `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StackFiles lists the mounted files of the stack stackID by path (byte
// order); none for a stack that does not exist.
func (q *Queries) StackFiles(ctx context.Context, stackID string) ([]MountedFileView, error) {
	rows, err := q.pool.Query(ctx, `SELECT path, size, updated_at FROM rm_stack_files WHERE stack_id = $1 ORDER BY path COLLATE "C"`, stackID)
	if err != nil {
		return nil, fmt.Errorf("mounted files of stack %s: %w", stackID, err)
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MountedFileView, error) {
		var f MountedFileView
		err := r.Scan(&f.Path, &f.Size, &f.UpdatedAt)
		f.UpdatedAt = f.UpdatedAt.UTC()
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("mounted files of stack %s: %w", stackID, err)
	}
	if files == nil {
		files = []MountedFileView{}
	}
	return files, nil
}
