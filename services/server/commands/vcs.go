package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// vcsKind names integrations in name reservation messages.
const vcsKind = "vcs integration"

// VCSIntegration is what an integration is added with; secrets in the
// clear, encrypted here before they enter the command.
type VCSIntegration struct {
	Name          string
	Provider      vcs.Provider
	APIURL        string // "" means the provider's public API
	WebhookSecret []byte
	Token         []byte // optional: commit statuses and HTTPS clones
	SSHKey        []byte // optional: ssh:// clones
}

// AddVCSIntegration adds an integration and reserves its name, in one
// append. Its secrets are stored encrypted by the secrets keeper.
func (s *Service) AddVCSIntegration(ctx context.Context, c Caller, in VCSIntegration) (string, error) {
	id, err := newID(ids.VCS)
	if err != nil {
		return "", err
	}
	var enc [3][]byte
	for i, plain := range [][]byte{in.WebhookSecret, in.Token, in.SSHKey} {
		if len(plain) == 0 {
			continue
		}
		if enc[i], err = s.cfg.Secrets.Encrypt(ctx, plain); err != nil {
			return "", fmt.Errorf("add integration %s: encrypt: %w", in.Name, err)
		}
	}
	at := s.now()
	_, err = s.execute(ctx, "add vcs integration", func(ctx context.Context, u *aggregate.Unit) error {
		a, err := aggregate.Get(ctx, u, aggregate.VCS, id)
		if err != nil {
			return err
		}
		if _, err := a.Do(vcs.Add{IntegrationID: id, Name: in.Name, Provider: in.Provider, APIURL: in.APIURL,
			WebhookSecret: enc[0], Token: enc[1], SSHKey: enc[2], Actor: c.Actor, At: at}); err != nil {
			return err
		}
		return reserveName(ctx, u, aggregate.VCSName, vcsKind, in.Name, id, c.Actor, at)
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "vcs integration added", "integration_id", id, "provider", in.Provider, "actor", c.Actor)
	return id, nil
}

// ResolveVCS returns the id of the integration ref names: an id
// ("vcs_…") or a name. An unknown one is domain.ErrNotFound.
func (s *System) ResolveVCS(ctx context.Context, ref string) (string, error) {
	st, err := s.integration(ctx, ref)
	return st.ID(), err
}

// integration loads the integration ref names (id or name); one that does
// not exist is domain.ErrNotFound.
func (s *System) integration(ctx context.Context, ref string) (vcs.State, error) {
	if ref == "" {
		return vcs.State{}, &domain.ValidationError{Field: "vcs_integration", Problem: "must not be empty"}
	}
	id := ref
	if ids.VCS.Validate("vcs_integration", ref) != nil {
		owner, err := s.nameOwner(ctx, aggregate.VCSName, ref)
		if err != nil {
			return vcs.State{}, err
		}
		id = owner
	}
	var st vcs.State
	var err error
	if id != "" {
		st, err = aggregate.Load(ctx, s.aggs, aggregate.VCS, id)
	}
	if err != nil && !errors.Is(err, aggregate.ErrStreamType) {
		return vcs.State{}, err
	}
	if id == "" || err != nil || !st.Exists() {
		return vcs.State{}, fmt.Errorf("vcs integration %q: %w", ref, domain.ErrNotFound)
	}
	return st, nil
}

// resolveVCSSetting resolves a stack's vcs_integration_id setting, given
// as an id or a name; "" stays "" (no integration).
func (s *Service) resolveVCSSetting(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	id, err := s.ResolveVCS(ctx, ref)
	if errors.Is(err, domain.ErrNotFound) {
		return "", &domain.ValidationError{Field: "vcs_integration", Problem: fmt.Sprintf("no VCS integration %q", ref)}
	}
	return id, err
}

// WebhookTarget is the integration a webhook URL names, with its webhook
// secret in the clear.
type WebhookTarget struct {
	IntegrationID string
	Secret        []byte
}

// WebhookTarget returns the integration of provider named name and its
// webhook secret. A missing integration, or one of another provider, is
// domain.ErrNotFound.
func (s *Service) WebhookTarget(ctx context.Context, provider vcs.Provider, name string) (WebhookTarget, error) {
	st, err := s.integration(ctx, name)
	if err != nil {
		return WebhookTarget{}, err
	}
	if st.Provider() != provider {
		return WebhookTarget{}, fmt.Errorf("%s integration %q: %w", provider, name, domain.ErrNotFound)
	}
	secret, err := s.cfg.Secrets.Decrypt(ctx, st.WebhookSecret())
	if err != nil {
		return WebhookTarget{}, fmt.Errorf("integration %s: decrypt the webhook secret: %w", st.ID(), err)
	}
	return WebhookTarget{IntegrationID: st.ID(), Secret: secret}, nil
}

// VCSAccess is what talking to an integration's API or cloning through it
// takes, secrets in the clear.
type VCSAccess struct {
	IntegrationID string
	Name          string
	Provider      vcs.Provider
	APIURL        string
	Token         string
	SSHKey        []byte
}

// VCSAccess returns the integration ref names with its token and SSH key
// decrypted.
func (s *Service) VCSAccess(ctx context.Context, ref string) (VCSAccess, error) {
	st, err := s.integration(ctx, ref)
	if err != nil {
		return VCSAccess{}, err
	}
	a := VCSAccess{IntegrationID: st.ID(), Name: st.Name(), Provider: st.Provider(), APIURL: st.APIURL()}
	if t := st.Token(); len(t) > 0 {
		plain, err := s.cfg.Secrets.Decrypt(ctx, t)
		if err != nil {
			return VCSAccess{}, fmt.Errorf("integration %s: decrypt the token: %w", st.ID(), err)
		}
		a.Token = strings.TrimSpace(string(plain))
	}
	if k := st.SSHKey(); len(k) > 0 {
		if a.SSHKey, err = s.cfg.Secrets.Decrypt(ctx, k); err != nil {
			return VCSAccess{}, fmt.Errorf("integration %s: decrypt the SSH key: %w", st.ID(), err)
		}
	}
	return a, nil
}

// RunOrigin is what reporting a webhook run's state to its commit takes:
// the run, the delivery that queued it, its stack's name and the
// integration's access.
type RunOrigin struct {
	Run       run.State
	Delivery  delivery.State
	StackName string
	Access    VCSAccess
}

// RunOrigin returns the origin of run runID; ok is false for a run no
// webhook delivery queued.
func (s *Service) RunOrigin(ctx context.Context, runID string) (o RunOrigin, ok bool, err error) {
	if o.Run, err = aggregate.Load(ctx, s.aggs, aggregate.Run, runID); err != nil || !o.Run.Exists() || o.Run.DeliveryID() == "" {
		return RunOrigin{}, false, err
	}
	if o.Delivery, err = aggregate.Load(ctx, s.aggs, aggregate.Delivery, o.Run.DeliveryID()); err != nil || !o.Delivery.Exists() {
		return RunOrigin{}, false, err
	}
	stk, err := aggregate.Load(ctx, s.aggs, aggregate.Stack, o.Run.StackID())
	if err != nil {
		return RunOrigin{}, false, err
	}
	o.StackName = stk.Settings().Name
	if o.Access, err = s.VCSAccess(ctx, o.Delivery.IntegrationID()); err != nil {
		return RunOrigin{}, false, err
	}
	return o, true, nil
}
