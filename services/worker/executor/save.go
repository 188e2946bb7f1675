package executor

import (
	"context"
	"io"
)

// save stores the workspace of an UNCONFIRMED run, encrypted to the pool's
// key, before PLANNING reports its result: by the time the run can be
// confirmed, any worker of the pool can restore it.
func (x *execution) save(ctx context.Context, ph *phase) *failure {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := x.cfg.Workspaces.Create(wctx, x.job.RunID)
	if err != nil {
		return x.ctxFailure(ctx, ph, "save the workspace: %v", err)
	}
	counted := &countingWriter{w: w}
	if err := SaveWorkspace(wctx, x.ws.work, x.poolPub, counted); err != nil {
		cancel() // the store must not keep a partial workspace
		w.Close()
		return x.ctxFailure(ctx, ph, "%v", err)
	}
	if err := w.Close(); err != nil {
		return x.ctxFailure(ctx, ph, "save the workspace: %v", err)
	}
	ph.log.printf("Saved the workspace for the apply, encrypted to the worker pool's key (%d bytes)", counted.n)
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
