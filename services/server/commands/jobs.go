package commands

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/seal"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// StateMinter mints managed-state credentials for one phase of a run;
// *statebackend.Service satisfies it.
type StateMinter interface {
	Mint(ctx context.Context, stackID, runID string, phase run.Phase) (statebackend.Credentials, error)
}

// RunJob returns the job of run runID for worker workerID of pool poolID,
// which the run must be assigned to: the stack's settings, variables and
// mounted files as they are now, secret values and file contents sealed to
// the pool's public key.
func (s *Service) RunJob(ctx context.Context, poolID, workerID, runID string) (protocol.Job, error) {
	r, st, pub, err := s.workerRun(ctx, poolID, workerID, runID)
	if err != nil {
		return protocol.Job{}, err
	}
	set := st.Settings()
	job := protocol.Job{
		RunID: runID, StackID: st.ID(), Type: r.Type(), Confirmed: r.Status() == run.Confirmed, Autodeploy: r.Autodeploy(),
		RepositoryURL: set.RepositoryURL, Commit: r.Commit(), Branch: set.Branch, TriggeredBy: r.TriggeredBy(), ProjectRoot: set.ProjectRoot, Tool: set.Tool, RunnerImage: set.RunnerImage,
		Hooks: set.Hooks, TaskCommand: r.TaskCommand(), ManagedState: st.ManagedState(), Destroy: r.Destroy(), Drift: r.DriftDetection(), OutputsKey: s.outputsKey,
	}
	if job.GitCredentials, err = s.sealedGitCredentials(ctx, set.VCSIntegrationID, pub); err != nil {
		return protocol.Job{}, fmt.Errorf("job of run %s: %w", runID, err)
	}
	for _, v := range st.EnvVars() {
		jv := protocol.Variable{Name: v.Name, Scope: v.Scope, Value: v.Value}
		if v.Secret {
			plain, err := s.cfg.Secrets.Decrypt(ctx, v.Ciphertext)
			if err != nil {
				return protocol.Job{}, fmt.Errorf("job of run %s: decrypt variable %s: %w", runID, v.Key, err)
			}
			jv.Value = ""
			if jv.Sealed, err = seal.Bytes(pub, plain); err != nil {
				return protocol.Job{}, fmt.Errorf("job of run %s: seal variable %s: %w", runID, v.Key, err)
			}
		}
		job.Env = append(job.Env, jv)
	}
	for _, f := range st.Files() {
		plain, err := s.cfg.Secrets.Decrypt(ctx, f.Ciphertext)
		if err != nil {
			return protocol.Job{}, fmt.Errorf("job of run %s: decrypt mounted file %s: %w", runID, f.Path, err)
		}
		sealed, err := seal.Bytes(pub, plain)
		if err != nil {
			return protocol.Job{}, fmt.Errorf("job of run %s: seal mounted file %s: %w", runID, f.Path, err)
		}
		job.Files = append(job.Files, protocol.File{Path: f.Path, Sealed: sealed})
	}
	return job, nil
}

// PhaseCredentials mints managed-state credentials for the phase the run
// of workerID is in, sealed to the pool's public key (a JSON
// protocol.StateCredentials). It returns nil when the stack's state is not
// managed or the phase does not touch state.
func (s *Service) PhaseCredentials(ctx context.Context, poolID, workerID, runID string, phase run.Phase) ([]byte, error) {
	if _, ok := statebackend.AccessFor(phase); !ok || s.cfg.StateCredentials == nil {
		return nil, nil
	}
	r, st, pub, err := s.workerRun(ctx, poolID, workerID, runID)
	if err != nil {
		return nil, err
	}
	if !st.ManagedState() {
		return nil, nil
	}
	if r.Status() != phase.Status() {
		return nil, refused(fmt.Errorf("run %s is %s, not in phase %s: %w", runID, r.Status(), phase, run.ErrIllegalTransition))
	}
	c, err := s.cfg.StateCredentials.Mint(ctx, st.ID(), runID, phase)
	if errors.Is(err, statebackend.ErrNotManaged) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credentials of run %s for %s: %w", runID, phase, err)
	}
	plain, err := json.Marshal(protocol.StateCredentials{Username: c.Username, Password: c.Password})
	if err != nil {
		return nil, err
	}
	sealed, err := seal.Bytes(pub, plain)
	if err != nil {
		return nil, fmt.Errorf("credentials of run %s for %s: %w", runID, phase, err)
	}
	return sealed, nil
}

// workerRun loads a run for the worker it is assigned to, the run's stack,
// and the public key of the pool's certificate. Nothing is appended.
func (s *Service) workerRun(ctx context.Context, poolID, workerID, runID string) (run.State, stack.State, crypto.PublicKey, error) {
	fail := func(err error) (run.State, stack.State, crypto.PublicKey, error) {
		return run.State{}, stack.State{}, nil, err
	}
	if err := errors.Join(ids.Worker.Validate("worker_id", workerID), ids.Run.Validate("run_id", runID)); err != nil {
		return fail(refused(err))
	}
	w, err := aggregate.Load(ctx, s.aggs, aggregate.Worker, workerID)
	if err != nil {
		return fail(err)
	}
	if err := checkLive(w, poolID, workerID); err != nil {
		return fail(err)
	}
	r, err := aggregate.Load(ctx, s.aggs, aggregate.Run, runID)
	if err != nil {
		return fail(err)
	}
	if !r.Exists() {
		return fail(refused(fmt.Errorf("no run %s: %w", runID, domain.ErrNotFound)))
	}
	if r.WorkerID() != workerID || w.RunID() != runID {
		return fail(refused(fmt.Errorf("run %s is not assigned to worker %s: %w", runID, workerID, ErrNotYourRun)))
	}
	st, err := aggregate.Load(ctx, s.aggs, aggregate.Stack, r.StackID())
	if err != nil {
		return fail(err)
	}
	if !st.Exists() {
		return fail(refused(fmt.Errorf("stack %s of run %s: %w", r.StackID(), runID, domain.ErrNotFound)))
	}
	pool, err := aggregate.Load(ctx, s.aggs, aggregate.WorkerPool, poolID)
	if err != nil {
		return fail(err)
	}
	pub, err := certificateKey(pool.Certificate().PEM)
	if err != nil {
		return fail(fmt.Errorf("pool %s: %w", poolID, err))
	}
	return r, st, pub, nil
}

// certificateKey returns the public key of a PEM certificate.
func certificateKey(certPEM string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return cert.PublicKey, nil
}

// sealedGitCredentials returns the credentials of the stack's integration
// (a token for HTTPS, a key for SSH) as a JSON protocol.GitCredentials
// sealed to the pool's key; nil when the stack has no integration, or it
// has neither.
func (s *Service) sealedGitCredentials(ctx context.Context, integrationID string, pub crypto.PublicKey) ([]byte, error) {
	if integrationID == "" {
		return nil, nil
	}
	a, err := s.VCSAccess(ctx, integrationID)
	if err != nil {
		return nil, fmt.Errorf("git credentials: %w", err)
	}
	c := gitCredentials(a)
	if c == (protocol.GitCredentials{}) {
		return nil, nil
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return seal.Bytes(pub, plain)
}

// gitCredentials are the credentials a clone through integration a uses.
// GitHub takes a token as the password of x-access-token, GitLab of oauth2.
func gitCredentials(a VCSAccess) protocol.GitCredentials {
	c := protocol.GitCredentials{SSHKey: string(a.SSHKey)}
	if a.Token != "" {
		c.Username, c.Password = "x-access-token", a.Token
		if a.Provider == vcs.GitLab {
			c.Username = "oauth2"
		}
	}
	return c
}
