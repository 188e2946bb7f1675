package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/run"
	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/vcs"
)

// handleDelivery acts on a recorded (or replayed) delivery.
func (d *Drain) handleDelivery(msg *message.Message) error {
	ctx, e, _, err := d.decode(msg)
	if err != nil {
		d.log.Warn("undecodable delivery event dropped", "err", err)
		return nil
	}
	status, runs, err := d.cfg.Commands.ActOnDelivery(ctx, e.StreamID, d.plan)
	if err != nil {
		return fmt.Errorf("delivery %s: %w", e.StreamID, err)
	}
	d.log.InfoContext(ctx, "delivery acted on", "delivery_id", e.StreamID, "status", string(status), "runs", len(runs),
		"correlation_id", msgCorrelation(ctx))
	return nil
}

// plan decides what a delivery asks for: the runs of the integration's
// stacks that track the payload's repository and branch (and, for a push
// that lists its files, whose project root the push touches), or why there
// are none.
func (d *Drain) plan(ctx context.Context, st delivery.State) (commands.DeliveryOutcome, error) {
	ev, err := vcs.Parse(st.Provider(), st.Event(), st.Payload())
	if errors.Is(err, vcs.ErrIgnored) {
		return commands.DeliveryOutcome{Ignored: strings.TrimPrefix(err.Error(), vcs.ErrIgnored.Error()+": ")}, nil
	}
	if err != nil {
		return commands.DeliveryOutcome{}, err
	}
	stacks, err := d.cfg.Stacks.StacksOfIntegration(ctx, st.IntegrationID())
	if err != nil {
		return commands.DeliveryOutcome{}, err
	}
	return Match(ev, stacks), nil
}

// Match decides which of an integration's stacks an event concerns: those
// whose repository is one the payload names (compared as
// domainvcs.RepositoryKey) and whose branch is the pushed one (or the one a
// pull request targets); for a push that lists its files, only the stacks
// whose project root it touches (a stack without one, always). A push
// queues TRACKED runs, a pull request PROPOSED ones.
func Match(ev vcs.Event, stacks []Stack) commands.DeliveryOutcome {
	keys := map[string]bool{}
	for _, u := range ev.Repositories {
		if k := domainvcs.RepositoryKey(u); k != "" {
			keys[k] = true
		}
	}
	typ := run.Tracked
	if ev.Kind == vcs.PullRequest {
		typ = run.Proposed
	}
	var out commands.DeliveryOutcome
	repoKnown, branchKnown := false, false
	for _, s := range stacks {
		if !keys[domainvcs.RepositoryKey(s.RepositoryURL)] {
			continue
		}
		repoKnown = true
		if s.Branch != ev.Branch {
			continue
		}
		branchKnown = true
		if ev.Kind == vcs.Push && ev.FilesListed && !vcs.Touches(s.ProjectRoot, ev.Files) {
			continue
		}
		out.Triggers = append(out.Triggers, commands.DeliveryTrigger{StackID: s.ID, Type: typ, Commit: ev.Commit})
	}
	switch {
	case len(out.Triggers) > 0:
	case !repoKnown:
		out.Ignored = fmt.Sprintf("no stack of the integration tracks repository %s", firstOr(ev.Repositories, "(none named)"))
	case !branchKnown:
		out.Ignored = fmt.Sprintf("no stack of the integration tracks branch %s of the repository", ev.Branch)
	default:
		out.Ignored = fmt.Sprintf("the push to %s touches no stack's project root", ev.Branch)
	}
	return out
}

func firstOr(ss []string, or string) string {
	if len(ss) == 0 {
		return or
	}
	return ss[0]
}
