// Package delivery is the webhook delivery aggregate: one request a VCS
// sent to /webhooks/<provider>/<name>, recorded once its signature was
// verified, then acted on once by a drain (runs queued, or a reason it was
// ignored), or put on the poison queue when acting on it kept failing, from
// where an operator may replay it.
package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/vcs"
)

// MaxPayloadBytes bounds a recorded payload: the webhook endpoint refuses
// larger bodies with 413 before recording anything.
const MaxPayloadBytes = 1 << 20

// Limits on free text.
const (
	MaxEventLength  = 100
	MaxReasonLength = 2000
)

// Status is where a delivery is.
type Status string

// Delivery statuses.
const (
	Pending  Status = "PENDING"  // recorded, not acted on yet (or replayed)
	Handled  Status = "HANDLED"  // runs were queued
	Ignored  Status = "IGNORED"  // nothing to do, with a reason
	Poisoned Status = "POISONED" // acting on it kept failing
)

// ErrNotReplayable is matched by a refused Replay.
var ErrNotReplayable = errors.New("only a poisoned or ignored delivery can be replayed")

// TriggeredRun is a run a delivery queued.
type TriggeredRun struct {
	RunID   string   `json:"run_id"`
	StackID string   `json:"stack_id"`
	Type    run.Type `json:"type"`
}

// State is a delivery as its events made it; the zero value does not exist.
type State struct {
	id            string
	integrationID string
	provider      vcs.Provider
	event         string
	externalID    string
	payload       json.RawMessage
	status        Status
	reason        string
	runs          []TriggeredRun
	attempts      int // times it was made pending: 1 + replays
	receivedAt    time.Time
}

// Exists reports whether the delivery was recorded.
func (s State) Exists() bool { return s.id != "" }

// ID is the delivery id ("dlv_…").
func (s State) ID() string { return s.id }

// IntegrationID is the integration the delivery came through.
func (s State) IntegrationID() string { return s.integrationID }

// Provider is the delivery's VCS.
func (s State) Provider() vcs.Provider { return s.provider }

// Event is the provider's event type (X-GitHub-Event, X-Gitlab-Event).
func (s State) Event() string { return s.event }

// ExternalID is the provider's delivery id.
func (s State) ExternalID() string { return s.externalID }

// Payload is the body as received (verified JSON).
func (s State) Payload() json.RawMessage { return slices.Clone(s.payload) }

// Status is where the delivery is.
func (s State) Status() Status { return s.status }

// Reason says why it was ignored or poisoned.
func (s State) Reason() string { return s.reason }

// Runs lists the runs the delivery queued.
func (s State) Runs() []TriggeredRun { return slices.Clone(s.runs) }

// Attempts counts the times the delivery was up for processing.
func (s State) Attempts() int { return s.attempts }

// ReceivedAt is when the delivery was recorded.
func (s State) ReceivedAt() time.Time { return s.receivedAt }

// Command is a request to change a delivery.
type Command interface{ isCommand() }

// Receive records a verified delivery.
type Receive struct {
	DeliveryID    string // "dlv_…", derived from the integration and ExternalID so a redelivery finds it
	IntegrationID string
	Provider      vcs.Provider
	Event         string
	ExternalID    string
	Payload       json.RawMessage
	Actor         string
	At            time.Time
}

// Handle records the runs a pending delivery queued; on a delivery that is
// not pending it changes nothing (another drain acted on it).
type Handle struct {
	Runs  []TriggeredRun
	Notes []string // stacks that matched but refused a run, and why
	Actor string
	At    time.Time
}

// Ignore records why a pending delivery needs nothing done; on a delivery
// that is not pending it changes nothing.
type Ignore struct {
	Reason string
	Actor  string
	At     time.Time
}

// Poison records that acting on a pending delivery kept failing; on a
// delivery that is not pending it changes nothing.
type Poison struct {
	Reason string
	Actor  string
	At     time.Time
}

// Replay makes a poisoned or ignored delivery pending again.
type Replay struct {
	Actor string
	At    time.Time
}

func (Receive) isCommand() {}
func (Handle) isCommand()  {}
func (Ignore) isCommand()  {}
func (Poison) isCommand()  {}
func (Replay) isCommand()  {}

// Event is a fact about a delivery; all events are schema version 1.
type Event interface{ EventType() string }

// WebhookDeliveryReceived: a verified delivery was recorded.
type WebhookDeliveryReceived struct {
	DeliveryID    string          `json:"delivery_id"`
	IntegrationID string          `json:"integration_id"`
	Provider      vcs.Provider    `json:"provider"`
	Event         string          `json:"event"`
	ExternalID    string          `json:"external_id"`
	Payload       json.RawMessage `json:"payload"`
	At            time.Time       `json:"at"`
	Actor         string          `json:"actor"`
}

// WebhookDeliveryHandled: the delivery queued these runs.
type WebhookDeliveryHandled struct {
	Runs  []TriggeredRun `json:"runs"`
	Notes []string       `json:"notes,omitempty"`
	At    time.Time      `json:"at"`
	Actor string         `json:"actor"`
}

// WebhookDeliveryIgnored: the delivery needs nothing done, for Reason.
type WebhookDeliveryIgnored struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

// WebhookDeliveryPoisoned: acting on the delivery kept failing.
type WebhookDeliveryPoisoned struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

// WebhookDeliveryReplayRequested: an operator asked for the delivery to be
// acted on again.
type WebhookDeliveryReplayRequested struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// EventType implementations: stable names, never derived by reflection.

func (WebhookDeliveryReceived) EventType() string        { return "WebhookDeliveryReceived" }
func (WebhookDeliveryHandled) EventType() string         { return "WebhookDeliveryHandled" }
func (WebhookDeliveryIgnored) EventType() string         { return "WebhookDeliveryIgnored" }
func (WebhookDeliveryPoisoned) EventType() string        { return "WebhookDeliveryPoisoned" }
func (WebhookDeliveryReplayRequested) EventType() string { return "WebhookDeliveryReplayRequested" }

// Events returns a zero value of every delivery event type.
func Events() []Event {
	return []Event{WebhookDeliveryReceived{}, WebhookDeliveryHandled{}, WebhookDeliveryIgnored{},
		WebhookDeliveryPoisoned{}, WebhookDeliveryReplayRequested{}}
}

// Apply folds e into s.
func (s *State) Apply(e Event) {
	switch e := domain.Deref(e).(type) {
	case WebhookDeliveryReceived:
		s.id, s.integrationID, s.provider, s.event, s.externalID = e.DeliveryID, e.IntegrationID, e.Provider, e.Event, e.ExternalID
		s.payload, s.status, s.attempts, s.receivedAt = slices.Clone(e.Payload), Pending, 1, e.At
	case WebhookDeliveryHandled:
		s.status, s.runs, s.reason = Handled, slices.Clone(e.Runs), ""
	case WebhookDeliveryIgnored:
		s.status, s.reason = Ignored, e.Reason
	case WebhookDeliveryPoisoned:
		s.status, s.reason = Poisoned, e.Reason
	case WebhookDeliveryReplayRequested:
		s.status, s.attempts = Pending, s.attempts+1
	}
}

// Decide returns the events c causes on s, or why it is refused.
func Decide(s State, c Command) ([]Event, error) {
	switch c := domain.Deref(c).(type) {
	case Receive:
		return receive(s, c)
	case Handle:
		var p domain.Problems
		for i, r := range c.Runs {
			p.Check(ids.Run.Validate(fmt.Sprintf("runs[%d].run_id", i), r.RunID))
			p.Check(ids.Stack.Validate(fmt.Sprintf("runs[%d].stack_id", i), r.StackID))
		}
		for _, n := range c.Notes {
			p.CheckText("notes", n, MaxReasonLength, true)
		}
		if err := s.precheck(c.Actor, c.At, p); err != nil || s.status != Pending {
			return nil, err
		}
		return []Event{WebhookDeliveryHandled{Runs: slices.Clone(c.Runs), Notes: slices.Clone(c.Notes), At: c.At, Actor: c.Actor}}, nil
	case Ignore:
		var p domain.Problems
		p.CheckText("reason", c.Reason, MaxReasonLength, true)
		if err := s.precheck(c.Actor, c.At, p); err != nil || s.status != Pending {
			return nil, err
		}
		return []Event{WebhookDeliveryIgnored{Reason: c.Reason, At: c.At, Actor: c.Actor}}, nil
	case Poison:
		var p domain.Problems
		p.CheckText("reason", c.Reason, MaxReasonLength, true)
		if err := s.precheck(c.Actor, c.At, p); err != nil || s.status != Pending {
			return nil, err
		}
		return []Event{WebhookDeliveryPoisoned{Reason: c.Reason, At: c.At, Actor: c.Actor}}, nil
	case Replay:
		if err := s.precheck(c.Actor, c.At, nil); err != nil {
			return nil, err
		}
		if s.status != Poisoned && s.status != Ignored {
			return nil, fmt.Errorf("delivery %s is %s: %w", s.id, s.status, ErrNotReplayable)
		}
		return []Event{WebhookDeliveryReplayRequested{At: c.At, Actor: c.Actor}}, nil
	}
	return nil, &domain.ValidationError{Field: "command", Problem: fmt.Sprintf("unknown delivery command %T", c)}
}

func (s State) precheck(actor string, at time.Time, p domain.Problems) error {
	p.CheckOrigin(actor, at)
	if err := p.Err(); err != nil {
		return err
	}
	if !s.Exists() {
		return fmt.Errorf("delivery: %w", domain.ErrNotFound)
	}
	return nil
}

func receive(s State, c Receive) ([]Event, error) {
	var p domain.Problems
	p.Check(ids.Delivery.Validate("delivery_id", c.DeliveryID))
	p.Check(ids.VCS.Validate("integration_id", c.IntegrationID))
	if !c.Provider.Valid() {
		p.Addf("provider", "unknown provider %q", c.Provider)
	}
	p.CheckText("event", c.Event, MaxEventLength, true)
	p.CheckText("external_id", c.ExternalID, MaxEventLength, true)
	switch {
	case len(c.Payload) > MaxPayloadBytes:
		p.Addf("payload", "must be at most %d bytes", MaxPayloadBytes)
	case !json.Valid(c.Payload):
		p.Add("payload", "must be valid JSON")
	}
	p.CheckOrigin(c.Actor, c.At)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, fmt.Errorf("delivery %s (%s): %w", s.id, s.externalID, domain.ErrAlreadyExists)
	}
	return []Event{WebhookDeliveryReceived{
		DeliveryID: c.DeliveryID, IntegrationID: c.IntegrationID, Provider: c.Provider, Event: c.Event,
		ExternalID: c.ExternalID, Payload: slices.Clone(c.Payload), At: c.At, Actor: c.Actor,
	}}, nil
}
