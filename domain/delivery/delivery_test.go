package delivery

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/vcs"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const drain = "system:drain"

func TestEventsConform(t *testing.T) { eventtest.Conformance(t, "WebhookDelivery", Events()) }

func TestDecide(t *testing.T) {
	received := WebhookDeliveryReceived{DeliveryID: "dlv_1", IntegrationID: "vcs_1", Provider: vcs.GitHub, Event: "push",
		ExternalID: "abc", Payload: json.RawMessage(`{"ref":"refs/heads/main"}`), At: at, Actor: "vcs:gh"}
	receive := func(f func(*Receive)) Receive {
		c := Receive{DeliveryID: received.DeliveryID, IntegrationID: received.IntegrationID, Provider: received.Provider, Event: received.Event,
			ExternalID: received.ExternalID, Payload: received.Payload, Actor: received.Actor, At: at}
		f(&c)
		return c
	}
	runs := []TriggeredRun{{RunID: "run_1", StackID: "stk_1", Type: run.Tracked}}
	handled := WebhookDeliveryHandled{Runs: runs, At: at, Actor: drain}
	ignored := WebhookDeliveryIgnored{Reason: "no stack", At: at, Actor: drain}
	poisoned := WebhookDeliveryPoisoned{Reason: "boom", At: at, Actor: drain}
	replayed := WebhookDeliveryReplayRequested{At: at, Actor: "user:op"}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   error
	}{
		{"receive", nil, receive(func(*Receive) {}), []Event{received}, nil},
		{"receive twice", []Event{received}, receive(func(*Receive) {}), nil, domain.ErrAlreadyExists},
		{"receive malformed JSON", nil, receive(func(c *Receive) { c.Payload = json.RawMessage(`{"ref":`) }), nil, domain.ErrInvalid},
		{"receive too large", nil, receive(func(c *Receive) {
			c.Payload = json.RawMessage(`"` + strings.Repeat("a", MaxPayloadBytes) + `"`)
		}), nil, domain.ErrInvalid},
		{"receive for a bad integration id", nil, receive(func(c *Receive) { c.IntegrationID = "x" }), nil, domain.ErrInvalid},
		{"receive without event", nil, receive(func(c *Receive) { c.Event = "" }), nil, domain.ErrInvalid},
		{"handle", []Event{received}, Handle{Runs: runs, Actor: drain, At: at}, []Event{handled}, nil},
		{"handle again is nothing", []Event{received, handled}, Handle{Runs: runs, Actor: drain, At: at}, nil, nil},
		{"handle with a bad run id", []Event{received}, Handle{Runs: []TriggeredRun{{RunID: "stk_1", StackID: "stk_1"}}, Actor: drain, At: at}, nil, domain.ErrInvalid},
		{"handle unknown delivery", nil, Handle{Actor: drain, At: at}, nil, domain.ErrNotFound},
		{"ignore", []Event{received}, Ignore{Reason: "no stack", Actor: drain, At: at}, []Event{ignored}, nil},
		{"ignore without reason", []Event{received}, Ignore{Actor: drain, At: at}, nil, domain.ErrInvalid},
		{"ignore a handled delivery is nothing", []Event{received, handled}, Ignore{Reason: "x", Actor: drain, At: at}, nil, nil},
		{"poison", []Event{received}, Poison{Reason: "boom", Actor: drain, At: at}, []Event{poisoned}, nil},
		{"poison a handled delivery is nothing", []Event{received, handled}, Poison{Reason: "boom", Actor: drain, At: at}, nil, nil},
		{"replay poisoned", []Event{received, poisoned}, Replay{Actor: "user:op", At: at}, []Event{replayed}, nil},
		{"replay ignored", []Event{received, ignored}, Replay{Actor: "user:op", At: at}, []Event{replayed}, nil},
		{"replay handled", []Event{received, handled}, Replay{Actor: "user:op", At: at}, nil, ErrNotReplayable},
		{"replay pending", []Event{received}, Replay{Actor: "user:op", At: at}, nil, ErrNotReplayable},
		{"handle after replay", []Event{received, poisoned, replayed}, Handle{Runs: runs, Actor: drain, At: at}, []Event{handled}, nil},
		{"unknown command", nil, nil, nil, domain.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, e := range tc.given {
				s.Apply(e)
			}
			got, err := Decide(s, tc.cmd)
			if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
		})
	}
}

func TestApply(t *testing.T) {
	var s State
	s.Apply(&WebhookDeliveryReceived{DeliveryID: "dlv_1", IntegrationID: "vcs_1", Provider: vcs.GitLab, Event: "Push Hook",
		ExternalID: "u1", Payload: json.RawMessage(`{}`), At: at, Actor: "vcs:gl"})
	if s.Status() != Pending || s.Attempts() != 1 || s.ID() != "dlv_1" || s.IntegrationID() != "vcs_1" || s.Provider() != vcs.GitLab ||
		s.Event() != "Push Hook" || s.ExternalID() != "u1" || string(s.Payload()) != "{}" || !s.ReceivedAt().Equal(at) {
		t.Fatalf("received: %+v", s)
	}
	s.Apply(WebhookDeliveryPoisoned{Reason: "boom", At: at, Actor: drain})
	if s.Status() != Poisoned || s.Reason() != "boom" {
		t.Fatalf("poisoned: %+v", s)
	}
	s.Apply(WebhookDeliveryReplayRequested{At: at, Actor: "user:op"})
	s.Apply(WebhookDeliveryHandled{Runs: []TriggeredRun{{RunID: "run_1", StackID: "stk_1", Type: run.Proposed}}, At: at, Actor: drain})
	if s.Status() != Handled || s.Attempts() != 2 || s.Reason() != "" || len(s.Runs()) != 1 {
		t.Fatalf("handled after replay: %+v", s)
	}
}
