package name

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

const (
	web   = "web"
	stk1  = "stk_01"
	stk2  = "stk_02"
	alice = "user:alice"
	bob   = "user:bob"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func given(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

var (
	reserved = NameReserved{Name: web, OwnerID: stk1, At: at(0), Actor: alice}
	released = NameReleased{Name: web, OwnerID: stk1, At: at(1), Actor: alice}
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		is    error
		field string
	}{
		// Reserve
		{name: "reserve a free name", cmd: Reserve{Kind: "stack", Name: web, OwnerID: stk1, Actor: alice, At: at(0)}, want: []Event{reserved}},
		{name: "reserve a released name", given: []Event{reserved, released}, cmd: Reserve{Kind: "stack", Name: "Web", OwnerID: stk2, Actor: bob, At: at(2)},
			want: []Event{NameReserved{Name: "Web", OwnerID: stk2, At: at(2), Actor: bob}}},
		{name: "reserve one's own name again", given: []Event{reserved}, cmd: Reserve{Kind: "stack", Name: web, OwnerID: stk1, Actor: alice, At: at(2)}},
		{name: "reserve a taken name", given: []Event{reserved}, cmd: Reserve{Kind: "stack", Name: "WEB", OwnerID: stk2, Actor: bob, At: at(2)},
			is: domain.ErrAlreadyExists},
		{name: "reserve without a name", cmd: Reserve{Kind: "stack", Name: " ", OwnerID: stk1, Actor: alice, At: at(0)}, is: domain.ErrInvalid, field: "name"},
		{name: "reserve without an owner", cmd: Reserve{Kind: "stack", Name: web, Actor: alice, At: at(0)}, is: domain.ErrInvalid, field: "owner_id"},
		{name: "reserve without an actor", cmd: Reserve{Kind: "stack", Name: web, OwnerID: stk1, At: at(0)}, is: domain.ErrInvalid, field: "actor"},
		{name: "reserve without time", cmd: Reserve{Kind: "stack", Name: web, OwnerID: stk1, Actor: alice}, is: domain.ErrInvalid, field: "at"},

		// Release
		{name: "release one's name", given: []Event{reserved}, cmd: Release{Name: web, OwnerID: stk1, Actor: alice, At: at(1)}, want: []Event{released}},
		{name: "release a free name", cmd: Release{Name: web, OwnerID: stk1, Actor: alice, At: at(1)}},
		{name: "release a released name", given: []Event{reserved, released}, cmd: Release{Name: web, OwnerID: stk1, Actor: alice, At: at(2)}},
		{name: "release another owner's name", given: []Event{reserved}, cmd: Release{Name: web, OwnerID: stk2, Actor: bob, At: at(1)}},
		{name: "release without time", given: []Event{reserved}, cmd: Release{Name: web, OwnerID: stk1, Actor: alice}, is: domain.ErrInvalid, field: "at"},

		{name: "pointer command", cmd: &Reserve{Kind: "stack", Name: web, OwnerID: stk1, Actor: alice, At: at(0)}, want: []Event{reserved}},
		{name: "nil command", cmd: nil, is: domain.ErrInvalid, field: "command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(given(tc.given...), tc.cmd)
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
			switch {
			case tc.is == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			var ve *domain.ValidationError
			if tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field) {
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestTakenNameSaysWhoHasIt(t *testing.T) {
	_, err := Decide(given(reserved), Reserve{Kind: "worker pool", Name: "Web", OwnerID: stk2, Actor: bob, At: at(2)})
	if want := `worker pool name "Web" is taken by stk_01: already exists`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestApply(t *testing.T) {
	cases := []struct {
		name   string
		events []Event
		owner  string
	}{
		{"never reserved", nil, ""},
		{"reserved", []Event{reserved}, stk1},
		{"released", []Event{reserved, released}, ""},
		{"released by someone else", []Event{reserved, NameReleased{Name: web, OwnerID: stk2, At: at(1), Actor: bob}}, stk1},
		{"reserved again", []Event{reserved, released, NameReserved{Name: web, OwnerID: stk2, At: at(2), Actor: bob}}, stk2},
		{"by pointer, as a decoder gives them", []Event{&reserved}, stk1},
	}
	for _, tc := range cases {
		if got := given(tc.events...).Owner(); got != tc.owner {
			t.Errorf("%s: owner %q, want %q", tc.name, got, tc.owner)
		}
	}
}

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "Name", Events())
}

// Stored reservations must still decode, and their stream ids must not
// move: the JSON field names and the key are fixed.
func TestStoredFormIsStable(t *testing.T) {
	data, err := json.Marshal(reserved)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"web","owner_id":"stk_01","at":"2026-03-04T05:06:07Z","actor":"user:alice"}`; string(data) != want {
		t.Errorf("NameReserved JSON %s, want %s", data, want)
	}
	if Key("Web") != Key("wEB") {
		t.Error("the key depends on the name's case")
	}
	if got, want := Key("Web"), "4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2"; got != want {
		t.Errorf("Key(%q) = %q, want sha256(\"web\") = %q", "Web", got, want)
	}
}
