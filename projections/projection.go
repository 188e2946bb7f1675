package projections

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/eventstore"
)

// Projection folds events into read-model tables that it alone writes.
type Projection interface {
	// Name is the projection's stable name; its checkpoint row is
	// "projection:<name>". Renaming a projection rebuilds it from scratch.
	Name() string
	// Tables lists the tables the projection owns: Rebuild truncates them.
	Tables() []string
	// Apply queues on b the statements that fold e (decoded into data, a
	// domain event value) into the tables. Statements run in order inside
	// the projection's transaction, after those of earlier events, so they
	// see their effects; a failing statement rolls the page back and it is
	// retried. Apply itself does no I/O: queuing lets the runtime send a
	// whole page of events in one round trip. Events the projection does
	// not care about queue nothing.
	Apply(b *pgx.Batch, e eventstore.Event, data any) error
}

// Names of Gantry's projections. They name checkpoints: never rename one.
const (
	StacksName  = "stacks"
	RunsName    = "runs"
	PoolsName   = "pools"
	WorkersName = "workers"
	// VCSName keeps rm_vcs_integrations and rm_vcs_deliveries;
	// SchedulesName rm_schedules and rm_drift_detections.
	VCSName       = "vcs"
	SchedulesName = "schedules"
	APIKeysName   = "apikeys"
)

// checkpointPrefix starts the checkpoints row name of every projection.
const checkpointPrefix = "projection:"

// CheckpointName returns the checkpoints row of the projection named name.
func CheckpointName(name string) string { return checkpointPrefix + name }

// All returns Gantry's projections.
func All() []Projection {
	return []Projection{stacksProjection{}, runsProjection{}, poolsProjection{}, workersProjection{}, vcsProjection{}, schedulesProjection{}, apiKeysProjection{}}
}

// Names returns the names of All, in order.
func Names() []string { return namesOf(All()) }

func namesOf(ps []Projection) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name()
	}
	return out
}

// ErrUnknownProjection is matched by errors naming a projection that does
// not exist.
var ErrUnknownProjection = errors.New("unknown projection")

// selectProjections returns the projections of ps named by names, in the
// order of ps, or all of ps when names is empty.
func selectProjections(ps []Projection, names []string) ([]Projection, error) {
	if len(names) == 0 {
		return ps, nil
	}
	known := namesOf(ps)
	var unknown []string
	for _, n := range names {
		if !slices.Contains(known, n) && !slices.Contains(unknown, n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w %s: the projections are %s", ErrUnknownProjection, strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return slices.DeleteFunc(slices.Clone(ps), func(p Projection) bool { return !slices.Contains(names, p.Name()) }), nil
}

var (
	projectionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	tableName      = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// checkProjections reports projections without a valid, unique name or
// without tables, and tables claimed by two projections.
func checkProjections(ps []Projection) error {
	var errs []error
	if len(ps) == 0 {
		errs = append(errs, errors.New("no projections"))
	}
	names := map[string]bool{}
	owner := map[string]string{}
	for _, p := range ps {
		n := p.Name()
		switch {
		case !projectionName.MatchString(n):
			errs = append(errs, fmt.Errorf("projection name %q: use a lower-case letter, then lower-case letters, digits or '_'", n))
		case names[n]:
			errs = append(errs, fmt.Errorf("projection %s appears twice", n))
		}
		names[n] = true
		if len(p.Tables()) == 0 {
			errs = append(errs, fmt.Errorf("projection %s owns no tables", n))
		}
		for _, t := range p.Tables() {
			if !tableName.MatchString(t) {
				errs = append(errs, fmt.Errorf("projection %s: table name %q is not a plain lower-case identifier", n, t))
			}
			if o, dup := owner[t]; dup {
				errs = append(errs, fmt.Errorf("table %s is owned by projections %s and %s", t, o, n))
			}
			owner[t] = n
		}
	}
	return errors.Join(errs...)
}
