package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// poolKind names worker pools in name reservation messages.
const poolKind = "worker pool"

// ResolvePool returns the id of the pool ref names: a pool id ("wp_…",
// returned as is) or a pool name (looked up, case-insensitively). An unknown
// name is domain.ErrNotFound.
func (s *Service) ResolvePool(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", &domain.ValidationError{Field: "pool", Problem: "must not be empty: give a worker pool id or name"}
	}
	if ids.WorkerPool.Validate("pool", ref) == nil {
		return ref, nil
	}
	owner, err := s.nameOwner(ctx, aggregate.PoolName, ref)
	if err != nil {
		return "", err
	}
	if owner == "" {
		return "", fmt.Errorf("worker pool %q: %w", ref, domain.ErrNotFound)
	}
	return owner, nil
}

// resolvePoolSetting resolves a stack's worker_pool_id setting, given as an
// id or a name, to the id of an existing pool. "" stays "" (the domain's
// default, the public pool), and the public pool always exists.
func (s *Service) resolvePoolSetting(ctx context.Context, ref string) (string, error) {
	const field = "worker_pool_id"
	if ref == "" || ref == ids.PublicPool {
		return ref, nil
	}
	id, err := s.ResolvePool(ctx, ref)
	if errors.Is(err, domain.ErrNotFound) {
		return "", &domain.ValidationError{Field: field, Problem: fmt.Sprintf("no worker pool %q", ref)}
	}
	if err != nil {
		return "", err
	}
	pool, err := aggregate.Load(ctx, s.aggs, aggregate.WorkerPool, id)
	if err != nil {
		return "", err
	}
	if !pool.Exists() {
		return "", &domain.ValidationError{Field: field, Problem: fmt.Sprintf("no worker pool %q", ref)}
	}
	return id, nil
}

// checkPoolName refuses names that would read as pool ids.
func checkPoolName(name string) error {
	if strings.HasPrefix(name, string(ids.WorkerPool)+"_") {
		return &domain.ValidationError{Field: "name", Problem: fmt.Sprintf("must not start with %q: that prefix is for worker pool ids", string(ids.WorkerPool)+"_")}
	}
	return nil
}

// NewPool is what a private worker pool is created from.
type NewPool struct {
	Name          string
	CSR           []byte // PEM
	Description   string
	Labels        []string
	DriftRunLimit int
}

// CreatePool creates a private pool: the CA signs a certificate from the
// CSR, a fresh secret is made (only its hash is stored), and the pool and
// its name reservation are appended together. It returns the pool id and
// the pool token, which holds the secret: it cannot be shown again.
func (s *Service) CreatePool(ctx context.Context, c Caller, in NewPool) (poolID, token string, err error) {
	if err := checkPoolName(in.Name); err != nil {
		return "", "", err
	}
	if poolID, err = newID(ids.WorkerPool); err != nil {
		return "", "", err
	}
	cert, secret, hash, err := s.poolCredentials(ctx, poolID, in.CSR)
	if err != nil {
		return "", "", err
	}
	at := s.now()
	_, err = s.execute(ctx, "create worker pool", func(ctx context.Context, u *aggregate.Unit) error {
		pool, err := poolOf(ctx, u, poolID)
		if err != nil {
			return err
		}
		if _, err := pool.Do(workerpool.Create{
			PoolID: poolID, Name: in.Name, Description: in.Description, Labels: in.Labels, DriftRunLimit: in.DriftRunLimit,
			Certificate: cert, SecretHash: hash, Actor: c.Actor, At: at,
		}); err != nil {
			return csrField(err)
		}
		return reserveName(ctx, u, aggregate.PoolName, poolKind, in.Name, poolID, c.Actor, at)
	})
	if err != nil {
		return "", "", err
	}
	s.log.InfoContext(ctx, "worker pool created", "pool_id", poolID, "actor", c.Actor, "certificate_fingerprint", cert.Fingerprint)
	token, err = s.poolToken(poolID, secret, cert.PEM)
	return poolID, token, err
}

// ResetPool gives a pool a new certificate (from a new CSR) and a new
// secret: tokens made before stop working. It returns the new token. The
// public pool (ids.PublicPool) is created by its first reset.
func (s *Service) ResetPool(ctx context.Context, c Caller, ref string, csr []byte) (poolID, token string, err error) {
	if poolID, err = s.ResolvePool(ctx, ref); err != nil {
		return "", "", err
	}
	// Refuse an unknown pool before the CA signs anything for it.
	pool, err := aggregate.Load(ctx, s.aggs, aggregate.WorkerPool, poolID)
	if err != nil {
		return "", "", err
	}
	if !pool.Exists() {
		if poolID == ids.PublicPool {
			// The operator of a server (not gantry dev) brings the public
			// pool to life by "resetting" it with a CSR of their key.
			token, err := s.EnsurePublicPool(ctx, c, csr)
			return poolID, token, err
		}
		return "", "", fmt.Errorf("worker pool %s: %w", poolID, domain.ErrNotFound)
	}
	cert, secret, hash, err := s.poolCredentials(ctx, poolID, csr)
	if err != nil {
		return "", "", err
	}
	at := s.now()
	_, err = s.execute(ctx, "reset worker pool", func(ctx context.Context, u *aggregate.Unit) error {
		pool, err := poolOf(ctx, u, poolID)
		if err != nil {
			return err
		}
		_, err = pool.Do(workerpool.Reset{Certificate: cert, SecretHash: hash, Actor: c.Actor, At: at})
		return csrField(err)
	})
	if err != nil {
		return "", "", err
	}
	s.log.InfoContext(ctx, "worker pool reset", "pool_id", poolID, "actor", c.Actor, "certificate_fingerprint", cert.Fingerprint)
	token, err = s.poolToken(poolID, secret, cert.PEM)
	return poolID, token, err
}

func (s *Service) poolToken(poolID, secret, certPEM string) (string, error) {
	token, err := s.cfg.Pools.Token(PoolToken{
		ServerURL: s.cfg.ServerURL, NATSURL: s.cfg.NATSURL, PoolID: poolID, PoolSecret: secret, Certificate: certPEM,
	})
	if err != nil {
		return "", fmt.Errorf("encode the token of pool %s: %w", poolID, err)
	}
	return token, nil
}

// CyclePool asks every worker of the pool to exit.
func (s *Service) CyclePool(ctx context.Context, c Caller, ref string) (string, error) {
	poolID, err := s.ResolvePool(ctx, ref)
	if err != nil {
		return "", err
	}
	_, err = s.execute(ctx, "cycle worker pool", func(ctx context.Context, u *aggregate.Unit) error {
		pool, err := poolOf(ctx, u, poolID)
		if err != nil {
			return err
		}
		if !pool.State().Exists() {
			return fmt.Errorf("worker pool %s: %w", poolID, domain.ErrNotFound)
		}
		_, err = pool.Do(workerpool.Cycle{Actor: c.Actor, At: s.now()})
		return err
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "worker pool cycle requested", "pool_id", poolID, "actor", c.Actor)
	return poolID, nil
}

// DrainWorker stops a worker of the pool from taking new runs.
func (s *Service) DrainWorker(ctx context.Context, c Caller, poolRef, workerID string) (string, error) {
	return s.workerCommand(ctx, c, "drain worker", poolRef, workerID, worker.Drain{Actor: c.Actor})
}

// UndrainWorker lets a drained worker of the pool take runs again.
func (s *Service) UndrainWorker(ctx context.Context, c Caller, poolRef, workerID string) (string, error) {
	return s.workerCommand(ctx, c, "undrain worker", poolRef, workerID, worker.Undrain{Actor: c.Actor})
}

// workerCommand executes cmd (Drain or Undrain, stamped here) on a worker
// that must belong to the pool; it returns the worker id.
func (s *Service) workerCommand(ctx context.Context, c Caller, op, poolRef, workerID string, cmd worker.Command) (string, error) {
	if err := ids.Worker.Validate("worker", workerID); err != nil {
		return "", err
	}
	poolID, err := s.ResolvePool(ctx, poolRef)
	if err != nil {
		return "", err
	}
	_, err = s.execute(ctx, op, func(ctx context.Context, u *aggregate.Unit) error {
		w, err := workerOf(ctx, u, workerID)
		if err != nil {
			return err
		}
		if !w.State().Exists() || w.State().PoolID() != poolID {
			return fmt.Errorf("worker %s in pool %s: %w", workerID, poolID, domain.ErrNotFound)
		}
		switch cmd := cmd.(type) {
		case worker.Drain:
			cmd.At = s.now()
			_, err = w.Do(cmd)
		case worker.Undrain:
			cmd.At = s.now()
			_, err = w.Do(cmd)
		default:
			err = fmt.Errorf("%s: unexpected worker command %T", op, cmd)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, op, "pool_id", poolID, "worker_id", workerID, "actor", c.Actor)
	return workerID, nil
}

// poolCredentials signs a pool's certificate from its CSR and makes a new
// pool secret, as creating and resetting a pool both do.
func (s *Service) poolCredentials(ctx context.Context, poolID string, csr []byte) (cert workerpool.Certificate, secret, hash string, err error) {
	if cert, err = s.cfg.Pools.Certify(ctx, poolID, csr); err != nil {
		return workerpool.Certificate{}, "", "", err
	}
	if secret, hash, err = s.cfg.Pools.NewSecret(); err != nil {
		return workerpool.Certificate{}, "", "", fmt.Errorf("new pool secret: %w", err)
	}
	return cert, secret, hash, nil
}

// PublicPoolName is the name of the built-in public pool.
const PublicPoolName = "public"

// EnsurePublicPool makes the built-in public pool (ids.PublicPool) ready for
// a launcher holding the private key of csr: it creates the pool the first
// time, and afterwards resets it with a certificate for csr, so that every
// call returns a working token and tokens of earlier calls stop working.
// The operator's server (gantry dev) calls it at start; the key should stay
// the same across starts, or saved workspaces of UNCONFIRMED runs can no
// longer be opened.
func (s *Service) EnsurePublicPool(ctx context.Context, c Caller, csr []byte) (token string, err error) {
	pool, err := aggregate.Load(ctx, s.aggs, aggregate.WorkerPool, ids.PublicPool)
	if err != nil {
		return "", err
	}
	if pool.Exists() {
		_, token, err = s.ResetPool(ctx, c, ids.PublicPool, csr)
		return token, err
	}
	cert, secret, hash, err := s.poolCredentials(ctx, ids.PublicPool, csr)
	if err != nil {
		return "", err
	}
	at := s.now()
	_, err = s.execute(ctx, "create the public worker pool", func(ctx context.Context, u *aggregate.Unit) error {
		pool, err := poolOf(ctx, u, ids.PublicPool)
		if err != nil {
			return err
		}
		if _, err := pool.Do(workerpool.Create{
			PoolID: ids.PublicPool, Name: PublicPoolName, Description: "The built-in public worker pool, run by the server's operator",
			Public: true, Certificate: cert, SecretHash: hash, Actor: c.Actor, At: at,
		}); err != nil {
			return csrField(err)
		}
		return reserveName(ctx, u, aggregate.PoolName, poolKind, PublicPoolName, ids.PublicPool, c.Actor, at)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "public worker pool created", "pool_id", ids.PublicPool, "actor", c.Actor)
	return s.poolToken(ids.PublicPool, secret, cert.PEM)
}
