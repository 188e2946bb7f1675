package eventtest

import (
	"fmt"
	"testing"
	"time"
)

// recorder collects failures instead of failing the test, so the checks
// themselves can be checked.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recorder) Fatal(args ...any)                 { r.failures = append(r.failures, fmt.Sprint(args...)) }

type Inner struct {
	N int `json:"n"`
}

type ThingHappened struct {
	ID    string    `json:"id"`
	Inner []Inner   `json:"inner,omitempty"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

func (ThingHappened) EventType() string { return "ThingHappened" }

type ThingUntagged struct {
	ID    string
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

func (ThingUntagged) EventType() string { return "ThingUntagged" }

type UntaggedInner struct{ N int }

type ThingNested struct {
	Inner UntaggedInner `json:"inner"`
	At    time.Time     `json:"at"`
	Actor string        `json:"actor"`
}

func (ThingNested) EventType() string { return "ThingNested" }

type ThingWithoutOrigin struct {
	ID string `json:"id"`
}

func (ThingWithoutOrigin) EventType() string { return "ThingWithoutOrigin" }

type OtherHappened struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

func (OtherHappened) EventType() string { return "OtherHappened" }

type ThingLossy struct {
	hidden string
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
}

func (ThingLossy) EventType() string { return "ThingLossy" }

type event = interface{ EventType() string }

func TestConformance(t *testing.T) {
	cases := []struct {
		name   string
		events []event
		fails  int
	}{
		{"conforming", []event{ThingHappened{}}, 0},
		{"none registered", nil, 1},
		{"untagged field", []event{ThingUntagged{}}, 1},
		{"untagged nested field", []event{ThingNested{}}, 1},
		{"no origin", []event{ThingWithoutOrigin{}}, 2},
		{"wrong namespace", []event{OtherHappened{}}, 1},
		{"registered twice", []event{ThingHappened{}, ThingHappened{}}, 1},
		{"registered as pointer", []event{&ThingHappened{}}, 1},
		{"unexported field", []event{ThingLossy{}}, 1},
	}
	for _, tc := range cases {
		r := &recorder{TB: t}
		Conformance(r, "Thing", tc.events)
		if len(r.failures) != tc.fails {
			t.Errorf("%s: %d failures, want %d: %q", tc.name, len(r.failures), tc.fails, r.failures)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	r := &recorder{TB: t}
	RoundTrip[event](r, ThingHappened{ID: "x", Inner: []Inner{{1}}, At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Actor: "a"})
	if len(r.failures) != 0 {
		t.Errorf("conforming event failed: %q", r.failures)
	}
	RoundTrip[event](r, ThingLossy{hidden: "lost", Actor: "a"})
	if len(r.failures) != 1 {
		t.Errorf("lossy event: %d failures, want 1", len(r.failures))
	}
	r.failures = nil
	RoundTrip[event](r, ThingHappened{Inner: []Inner{}}) // [] comes back as nil
	if len(r.failures) != 1 {
		t.Errorf("empty slice: %d failures, want 1", len(r.failures))
	}
}
