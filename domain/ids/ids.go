// Package ids validates Gantry's typed, prefixed identifiers ("run_01J…",
// "stk_…", "wp_…", "wkr_…", "ak_…"). Ids are generated outside the domain and carried
// in by commands; the prefix lets the domain reject a stack id passed where a
// run id belongs, and makes ids readable in logs and events.
package ids

import (
	"fmt"

	"github.com/gantryhq/gantry/domain"
)

// Prefix names the kind of aggregate an id belongs to.
type Prefix string

// The prefixes of Gantry's aggregates.
const (
	Stack      Prefix = "stk"
	Run        Prefix = "run"
	WorkerPool Prefix = "wp"
	Worker     Prefix = "wkr"
	// VCS integrations, webhook deliveries and cron schedules.
	VCS      Prefix = "vcs"
	Delivery Prefix = "dlv"
	Schedule Prefix = "sch"
	APIKey   Prefix = "ak"
)

// PublicPool is the id of the built-in public worker pool. It is fixed so that
// stacks can default to it without looking anything up.
const PublicPool = "wp_public"

// MaxLength matches the event store's stream id limit: an id is a stream id.
const MaxLength = 128

// Validate reports whether id is "<prefix>_<body>" where body is one or more
// letters, digits, '_' or '-' (so an id is also a valid event stream id and
// NATS subject token). The error is a *domain.ValidationError naming field.
func (p Prefix) Validate(field, id string) error {
	if id == "" {
		return &domain.ValidationError{Field: field, Problem: "must not be empty"}
	}
	want := string(p) + "_"
	if len(id) <= len(want) || id[:len(want)] != want {
		return &domain.ValidationError{Field: field, Problem: fmt.Sprintf("%q is not a %s id (want %s…)", id, p, want)}
	}
	if len(id) > MaxLength {
		return &domain.ValidationError{Field: field, Problem: fmt.Sprintf("must be at most %d characters", MaxLength)}
	}
	for _, r := range id[len(want):] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return &domain.ValidationError{Field: field, Problem: fmt.Sprintf("%q may only contain letters, digits, '_' and '-'", id)}
		}
	}
	return nil
}
