package vcs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/services/server/commands"
)

// Origins finds where a run came from; *commands.Service satisfies it.
type Origins interface {
	RunOrigin(ctx context.Context, runID string) (commands.RunOrigin, bool, error)
}

// Reporter reports the state of runs queued by webhook deliveries to their
// commits: GitHub commit statuses, GitLab commit statuses. It reports the
// run's current state, so a late or repeated call is harmless. An
// integration without a token reports nothing.
type Reporter struct {
	// Origins finds the run's delivery and integration. Required.
	Origins Origins
	// ServerURL is Gantry's public URL: a status links to
	// <ServerURL>/runs/<run id>.
	ServerURL string
	// Client sends the statuses. Default: 10 s timeout.
	Client *http.Client
}

// Status is a commit status as Gantry reports it.
type Status struct {
	State       string // the provider's word
	Description string
	Context     string // "gantry/<stack name>"
	TargetURL   string
}

// StatusOf maps a run's status to provider's commit status.
func StatusOf(provider domainvcs.Provider, st run.Status) (state, description string) {
	github := provider == domainvcs.GitHub
	switch st {
	case run.Queued, run.Ready:
		return "pending", "queued"
	case run.Unconfirmed:
		return "pending", "the plan waits for confirmation"
	case run.Finished:
		return "success", "finished"
	case run.Failed:
		if github {
			return "failure", "failed"
		}
		return "failed", "failed"
	case run.Stopped, run.Canceled, run.Discarded, run.Skipped:
		if github {
			return "error", strings.ToLower(string(st))
		}
		return "canceled", strings.ToLower(string(st))
	}
	if github {
		return "pending", strings.ToLower(string(st))
	}
	return "running", strings.ToLower(string(st))
}

// Report sends run runID's current state to its commit.
func (r *Reporter) Report(ctx context.Context, runID string) error {
	o, ok, err := r.Origins.RunOrigin(ctx, runID)
	if err != nil || !ok || o.Access.Token == "" {
		return err
	}
	ev, err := Parse(o.Delivery.Provider(), o.Delivery.Event(), o.Delivery.Payload())
	if err != nil || ev.Repo == "" {
		return nil // the delivery queued the run, so it parsed; without a repository name there is nowhere to report
	}
	state, desc := StatusOf(o.Access.Provider, o.Run.Status())
	s := Status{State: state, Description: "Gantry run " + desc, Context: "gantry/" + o.StackName,
		TargetURL: strings.TrimRight(r.ServerURL, "/") + "/runs/" + runID}
	return r.post(ctx, o.Access, ev.Repo, o.Run.Commit(), s)
}

func (r *Reporter) post(ctx context.Context, a commands.VCSAccess, repo, commit string, s Status) error {
	api := strings.TrimRight(a.APIURL, "/")
	var (
		endpoint string
		body     any
	)
	header := http.Header{"Content-Type": {"application/json"}}
	if a.Provider == domainvcs.GitLab {
		endpoint = api + "/projects/" + url.PathEscape(repo) + "/statuses/" + commit
		body = map[string]string{"state": s.State, "description": s.Description, "name": s.Context, "target_url": s.TargetURL}
		header.Set("PRIVATE-TOKEN", a.Token)
	} else {
		endpoint = api + "/repos/" + repo + "/statuses/" + commit
		body = map[string]string{"state": s.State, "description": s.Description, "context": s.Context, "target_url": s.TargetURL}
		header.Set("Authorization", "Bearer "+a.Token)
		header.Set("Accept", "application/vnd.github+json")
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("commit status: %w", err)
	}
	req.Header = header
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("commit status to %s: %w", a.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("commit status to %s: %s: %s", a.Name, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
