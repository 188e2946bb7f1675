package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// DrainActor is who the drain's events are recorded as.
const DrainActor = "system:drain"

// DeliveryID is the id of the delivery an integration's provider sent
// with externalID: derived, so that a redelivery of it finds the first.
func DeliveryID(integrationID, externalID string) string {
	sum := sha256.Sum256([]byte(integrationID + "\x00" + externalID))
	return string(ids.Delivery) + "_" + hex.EncodeToString(sum[:16])
}

// Delivery is a verified webhook delivery to record.
type Delivery struct {
	IntegrationID string
	Provider      vcs.Provider
	Event         string
	ExternalID    string
	Payload       []byte
}

// RecordDelivery records a verified delivery as WebhookDeliveryReceived
// and returns its id; duplicate is true (and nothing is appended) when the
// provider's delivery id was recorded before. It does not wait for the read
// models: the webhook answers at once.
func (s *System) RecordDelivery(ctx context.Context, d Delivery) (id string, duplicate bool, err error) {
	id = DeliveryID(d.IntegrationID, d.ExternalID)
	actor := "vcs:" + d.IntegrationID
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: actor, CorrelationID: id})
	at := s.now()
	_, err = s.executeNoWait(ctx, "record delivery", func(ctx context.Context, u *aggregate.Unit) error {
		a, err := aggregate.Get(ctx, u, aggregate.Delivery, id)
		if err != nil {
			return err
		}
		_, err = a.Do(delivery.Receive{DeliveryID: id, IntegrationID: d.IntegrationID, Provider: d.Provider, Event: d.Event,
			ExternalID: d.ExternalID, Payload: d.Payload, Actor: actor, At: at})
		return err
	})
	if errors.Is(err, domain.ErrAlreadyExists) || errors.Is(err, eventstore.ErrConflict) {
		return id, true, nil
	}
	if err != nil {
		return "", false, err
	}
	return id, false, nil
}

// DeliveryTrigger is one run a delivery asks for.
type DeliveryTrigger struct {
	StackID string
	Type    run.Type
	Commit  string
}

// DeliveryOutcome is what acting on a delivery comes to: runs to queue, or
// why nothing is to be done.
type DeliveryOutcome struct {
	Triggers []DeliveryTrigger
	Ignored  string
}

// DeliveryPlanner decides what a pending delivery asks for.
type DeliveryPlanner func(ctx context.Context, d delivery.State) (DeliveryOutcome, error)

// ActOnDelivery acts on delivery id once: when it is pending, plan says
// what it asks for, and its runs are queued (each as TriggerRun would, with
// the delivery's commit) together with WebhookDeliveryHandled, or
// WebhookDeliveryIgnored is recorded, in one append at the delivery's
// version. Two drains acting on one delivery race for that version: the
// loser decides again and finds it acted on, and changes nothing. A stack
// that refuses its run (deleted, or manually locked by someone) is noted,
// not fatal. It returns the delivery's status afterwards and the runs this
// call queued.
func (s *System) ActOnDelivery(ctx context.Context, id string, plan DeliveryPlanner) (delivery.Status, []delivery.TriggeredRun, error) {
	if err := ids.Delivery.Validate("delivery", id); err != nil {
		return "", nil, err
	}
	var (
		status delivery.Status
		runs   []delivery.TriggeredRun
	)
	out, err := s.executeNoWait(ctx, "act on delivery", func(ctx context.Context, u *aggregate.Unit) error {
		runs = nil
		at := s.now()
		d, err := aggregate.Get(ctx, u, aggregate.Delivery, id)
		if err != nil {
			return err
		}
		if !d.State().Exists() {
			return fmt.Errorf("delivery %s: %w", id, domain.ErrNotFound)
		}
		status = d.State().Status()
		if status != delivery.Pending {
			return nil
		}
		outcome, err := plan(ctx, d.State())
		if err != nil {
			return err
		}
		actor := "vcs:" + d.State().IntegrationID()
		var notes []string
		for _, t := range outcome.Triggers {
			stk, err := stackOf(ctx, u, t.StackID)
			if err != nil {
				return err
			}
			if !stk.State().Exists() {
				notes = append(notes, fmt.Sprintf("stack %s: deleted", t.StackID))
				continue
			}
			if l, locked := stk.State().ManualLock(); locked && t.Type != run.Proposed && l.By != actor {
				notes = append(notes, fmt.Sprintf("stack %s: locked by %s", t.StackID, l.By))
				continue
			}
			runID, err := newID(ids.Run)
			if err != nil {
				return err
			}
			if err := queueRun(ctx, u, queuedRun{runID: runID, stackID: t.StackID, typ: t.Type, commit: t.Commit,
				deliveryID: id, actor: actor, at: at}); err != nil {
				return fmt.Errorf("delivery %s: queue a run on stack %s: %w", id, t.StackID, err)
			}
			runs = append(runs, delivery.TriggeredRun{RunID: runID, StackID: t.StackID, Type: t.Type})
		}
		switch {
		case len(runs) > 0:
			_, err = d.Do(delivery.Handle{Runs: runs, Notes: notes, Actor: DrainActor, At: at})
		case outcome.Ignored != "" || len(notes) > 0:
			reason := strings.Join(append(nonEmpty(outcome.Ignored), notes...), "; ")
			_, err = d.Do(delivery.Ignore{Reason: truncate(reason, delivery.MaxReasonLength), Actor: DrainActor, At: at})
		default:
			_, err = d.Do(delivery.Ignore{Reason: "no stack asked for a run", Actor: DrainActor, At: at})
		}
		status = d.State().Status()
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if out == nil {
		runs = nil
	}
	if len(runs) > 0 {
		s.log.InfoContext(ctx, "delivery handled", "delivery_id", id, "runs", len(runs))
	}
	return status, runs, nil
}

// PoisonDelivery records that acting on a pending delivery kept failing,
// for an operator to look at and replay.
func (s *System) PoisonDelivery(ctx context.Context, id, reason string) error {
	if err := ids.Delivery.Validate("delivery", id); err != nil {
		return err
	}
	_, err := s.executeNoWait(ctx, "poison delivery", func(ctx context.Context, u *aggregate.Unit) error {
		d, err := aggregate.Get(ctx, u, aggregate.Delivery, id)
		if err != nil {
			return err
		}
		_, err = d.Do(delivery.Poison{Reason: truncate(reason, delivery.MaxReasonLength), Actor: DrainActor, At: s.now()})
		return err
	})
	if err == nil {
		s.log.WarnContext(ctx, "delivery poisoned", "delivery_id", id, "reason", reason)
	}
	return err
}

// ReplayDelivery makes a poisoned or ignored delivery pending again, for
// a drain to act on it anew.
func (s *Service) ReplayDelivery(ctx context.Context, c Caller, id string) error {
	if err := ids.Delivery.Validate("delivery", id); err != nil {
		return err
	}
	_, err := s.execute(ctx, "replay delivery", func(ctx context.Context, u *aggregate.Unit) error {
		d, err := aggregate.Get(ctx, u, aggregate.Delivery, id)
		if err != nil {
			return err
		}
		_, err = d.Do(delivery.Replay{Actor: c.Actor, At: s.now()})
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "delivery replayed", "delivery_id", id, "actor", c.Actor)
	}
	return err
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// truncate cuts s to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
