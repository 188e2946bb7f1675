// Package instrumentation serves a server process's probes and metrics on
// their own listener (--instrumentation-listen), apart from the API:
// /startup, /readiness, /liveness and Prometheus /metrics. Readiness is
// the state of the process's dependencies (PostgreSQL, NATS, the bucket),
// checked on every request; the API's grpc.health service reports the
// same.
package instrumentation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"gocloud.dev/blob"
)

// DefaultCheckTimeout bounds each readiness check.
const DefaultCheckTimeout = 2 * time.Second

// Check is one dependency the process needs to serve.
type Check struct {
	Name string
	// Check returns nil when the dependency answers.
	Check func(ctx context.Context) error
}

// Postgres checks that the database answers a query.
func Postgres(pool *pgxpool.Pool) Check {
	return Check{Name: "postgres", Check: func(ctx context.Context) error {
		var one int
		if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("query: %w", err)
		}
		return nil
	}}
}

// NATS checks that the connection is up and the server answers a ping.
func NATS(nc *nats.Conn) Check {
	return Check{Name: "nats", Check: func(ctx context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("connection is %s", st)
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		return nil
	}}
}

// Bucket checks that the object storage bucket is reachable.
func Bucket(b *blob.Bucket) Check {
	return Check{Name: "bucket", Check: func(ctx context.Context) error {
		ok, err := b.IsAccessible(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("the bucket is not accessible")
		}
		return nil
	}}
}

// Readiness runs the checks of a process.
type Readiness struct {
	checks  []Check
	timeout time.Duration
}

// NewReadiness returns the readiness of checks, each bounded by timeout
// (DefaultCheckTimeout when 0).
func NewReadiness(timeout time.Duration, checks ...Check) *Readiness {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	return &Readiness{checks: checks, timeout: timeout}
}

// Result is the outcome of one check.
type Result struct {
	Name string
	Err  error
}

// Check runs every check at once and returns their results in order.
func (r *Readiness) Check(ctx context.Context) []Result {
	out := make([]Result, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			out[i] = Result{Name: c.Name, Err: c.Check(cctx)}
		})
	}
	wg.Wait()
	return out
}

// Ready returns nil when every check passes, else the failures, each
// named.
func (r *Readiness) Ready(ctx context.Context) error {
	var errs []error
	for _, res := range r.Check(ctx) {
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.Name, res.Err))
		}
	}
	return errors.Join(errs...)
}
