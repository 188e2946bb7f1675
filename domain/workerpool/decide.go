package workerpool

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
)

// Limits on pool settings.
const (
	MaxNameLength        = 100
	MaxDescriptionLength = 2000
	MaxSecretHashLength  = 256
)

// Decide returns the events c causes on the pool s, or an error: a
// *domain.ValidationError for bad input, domain.ErrNotFound for a pool that
// does not exist (or was deleted), domain.ErrAlreadyExists for creating an
// existing one, ErrPublicPool for deleting the public pool, an *InUseError
// (ErrInUse) for deleting a pool stacks use. No events and no
// error means c changes nothing. s is not modified.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Create:
		return create(s, c)
	case Update:
		return s.update(c)
	case Reset:
		return s.reset(c)
	case Cycle:
		return s.cycle(c)
	case Delete:
		return s.delete(c)
	case StartDriftRun:
		return s.startDriftRun(c)
	case EndDriftRun:
		return s.endDriftRun(c)
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown worker pool command %T", c)}
}

// precheck validates the command's origin on top of the problems already
// found, then requires that the pool exists.
func (s State) precheck(actor string, at time.Time, p domain.Problems) error {
	p.CheckOrigin(actor, at)
	if err := p.Err(); err != nil {
		return err
	}
	if !s.created {
		return fmt.Errorf("worker pool: %w", domain.ErrNotFound)
	}
	if s.deleted {
		return fmt.Errorf("worker pool %s was deleted: %w", s.id, domain.ErrNotFound)
	}
	return nil
}

// details validates what Create and Update share and returns the labels normalized.
func details(p *domain.Problems, name, description string, labels []string, driftRunLimit int) []string {
	p.CheckText("name", name, MaxNameLength, true)
	p.CheckText("description", description, MaxDescriptionLength, false)
	if driftRunLimit < 0 {
		p.Add("drift_run_limit", "must be 0 (no limit) or a maximum of at least 1")
	}
	return p.NormalizeLabels("labels", labels)
}

func checkSecretHash(p *domain.Problems, hash string) {
	switch {
	case hash == "":
		p.Add("secret_hash", "must not be empty")
	case len(hash) > MaxSecretHashLength || strings.ContainsFunc(hash, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		p.Addf("secret_hash", "must be at most %d characters without spaces", MaxSecretHashLength)
	}
}

func create(s State, c Create) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.WorkerPool.Validate("pool_id", c.PoolID))
	if c.Public != (c.PoolID == ids.PublicPool) {
		p.Addf("public", "the public pool, and only it, has the id %s", ids.PublicPool)
	}
	labels := details(&p, c.Name, c.Description, c.Labels, c.DriftRunLimit)
	cert := c.Certificate.normalize(&p)
	checkSecretHash(&p, c.SecretHash)
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.created {
		return nil, fmt.Errorf("worker pool %s: %w", s.id, domain.ErrAlreadyExists)
	}
	return []Event{WorkerPoolCreated{
		PoolID: c.PoolID, Name: c.Name, Description: c.Description, Labels: labels, DriftRunLimit: c.DriftRunLimit,
		Public: c.Public, Certificate: cert, SecretHash: c.SecretHash, Generation: 1, At: c.At, Actor: c.Actor,
	}}, nil
}

func (s State) update(c Update) ([]Event, error) {
	var p domain.Problems
	labels := details(&p, c.Name, c.Description, c.Labels, c.DriftRunLimit)
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	if c.Name == s.name && c.Description == s.description && slices.Equal(labels, s.labels) && c.DriftRunLimit == s.driftRunLimit {
		return nil, nil
	}
	return []Event{WorkerPoolUpdated{
		Name: c.Name, Description: c.Description, Labels: labels, DriftRunLimit: c.DriftRunLimit, At: c.At, Actor: c.Actor,
	}}, nil
}

func (s State) reset(c Reset) ([]Event, error) {
	var p domain.Problems
	cert := c.Certificate.normalize(&p)
	checkSecretHash(&p, c.SecretHash)
	if err := s.precheck(c.Actor, c.At, p); err != nil {
		return nil, err
	}
	// A reset that kept either credential would not lock out a leaked token.
	if c.SecretHash == s.secretHash {
		p.Add("secret_hash", "a reset needs a new secret")
	}
	if cert.Fingerprint == s.certificate.Fingerprint {
		p.Add("certificate.fingerprint", "a reset needs a new certificate")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return []Event{WorkerPoolReset{Certificate: cert, SecretHash: c.SecretHash, Generation: s.generation + 1, At: c.At, Actor: c.Actor}}, nil
}

func (s State) cycle(c Cycle) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	return []Event{WorkerPoolCycleRequested{At: c.At, Actor: c.Actor}}, nil
}

func (s State) delete(c Delete) ([]Event, error) {
	if err := s.precheck(c.Actor, c.At, nil); err != nil {
		return nil, err
	}
	if s.public {
		return nil, fmt.Errorf("delete %s: %w", s.id, ErrPublicPool)
	}
	if len(c.UsedBy) > 0 {
		return nil, &InUseError{PoolID: s.id, Stacks: slices.Clone(c.UsedBy)}
	}
	return []Event{WorkerPoolDeleted{At: c.At, Actor: c.Actor}}, nil
}
