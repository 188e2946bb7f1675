package drain_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/delivery"
	"github.com/gantryhq/gantry/domain/run"
	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/testenv/await"
)

const (
	sha  = "0123456789abcdef0123456789abcdef01234567"
	sha2 = "89abcdef0123456789abcdef0123456789abcdef"
	repo = "https://github.com/org/app.git"
)

func push(ref, after string, files ...string) []byte {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = `"` + f + `"`
	}
	return []byte(`{"ref":"` + ref + `","after":"` + after + `","deleted":false,
		"repository":{"full_name":"org/app","clone_url":"https://github.com/Org/App","ssh_url":"git@github.com:org/app.git","html_url":"https://github.com/org/app"},
		"commits":[{"added":[],"modified":[` + strings.Join(quoted, ",") + `],"removed":[]}]}`)
}

func (e *env) delivery(t *testing.T, id string) projections.DeliveryView {
	t.Helper()
	d, err := e.queries.GetDelivery(context.Background(), id)
	if err != nil && !errors.Is(err, projections.ErrNotFound) {
		t.Fatal(err)
	}
	return d
}

// awaitDelivery waits until the delivery's read model shows status.
func (e *env) awaitDelivery(t *testing.T, id string, status delivery.Status) projections.DeliveryView {
	t.Helper()
	var d projections.DeliveryView
	await.Until(t, 15*time.Second, "delivery "+id+" "+string(status), func() bool {
		d = e.delivery(t, id)
		return d.Status == string(status)
	})
	return d
}

func TestPushQueuesTrackedRunsOfMatchingStacks(t *testing.T) {
	e := newEnv(t)
	e.startDrain(t, "drain-1", nil, nil)
	gh := e.integration(t, domainvcs.GitHub, "gh")
	root := e.stack(t, "app", repo, "main", "", gh)
	infra := e.stack(t, "infra", "git@github.com:org/app", "main", "infra", gh)
	docs := e.stack(t, "docs", repo, "main", "docs", gh)
	e.stack(t, "other-branch", repo, "release", "", gh)
	e.stack(t, "untied", repo, "main", "", "")

	code, a := e.post(t, domainvcs.GitHub, "gh", "push", "d-1", push("refs/heads/main", sha, "infra/main.tf", "README.md"), secret)
	if code != http.StatusAccepted || a["status"] != "recorded" {
		t.Fatalf("push: %d %v", code, a)
	}
	id := a["delivery_id"].(string)
	d := e.awaitDelivery(t, id, delivery.Handled)
	if len(d.RunIDs) != 2 {
		t.Fatalf("runs %v, want one for %s and one for %s (not %s)", d.RunIDs, root, infra, docs)
	}
	stacks := map[string]bool{}
	for _, runID := range d.RunIDs {
		r, err := e.queries.GetRun(context.Background(), runID)
		if err != nil {
			t.Fatal(err)
		}
		stacks[r.StackID] = true
		if r.Type != run.Tracked || r.Commit != sha || r.TriggeredBy != "vcs:"+gh {
			t.Errorf("run %+v", r)
		}
	}
	if !stacks[root] || !stacks[infra] {
		t.Errorf("runs on stacks %v, want %s and %s", stacks, root, infra)
	}
	// The runs carry the delivery's id as their correlation id.
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'RunQueued' AND metadata->>'correlation_id' = $1`, id).Scan(&n); err != nil || n != 2 {
		t.Errorf("RunQueued events correlated with %s: %d (%v)", id, n, err)
	}

	// The same delivery again changes nothing.
	code, a = e.post(t, domainvcs.GitHub, "gh", "push", "d-1", push("refs/heads/main", sha, "infra/main.tf"), secret)
	if code != http.StatusOK || a["status"] != "duplicate" || a["delivery_id"] != id {
		t.Fatalf("redelivery: %d %v", code, a)
	}
	if got := e.count(t, "WebhookDeliveryReceived"); got != 1 {
		t.Errorf("%d deliveries recorded, want 1", got)
	}
}

func TestPullRequestQueuesProposedRun(t *testing.T) {
	e := newEnv(t)
	e.startDrain(t, "drain-1", nil, nil)
	gl := e.integration(t, domainvcs.GitLab, "gl")
	stk := e.stack(t, "app", "https://gitlab.example.com/group/app", "main", "", gl)
	body := []byte(`{"object_kind":"merge_request","project":{"id":7,"path_with_namespace":"group/app","git_http_url":"https://gitlab.example.com/group/app.git"},
		"object_attributes":{"iid":3,"action":"open","target_branch":"main","last_commit":{"id":"` + sha2 + `"}}}`)
	code, a := e.post(t, domainvcs.GitLab, "gl", "Merge Request Hook", "u-1", body, secret)
	if code != http.StatusAccepted {
		t.Fatalf("merge request: %d %v", code, a)
	}
	d := e.awaitDelivery(t, a["delivery_id"].(string), delivery.Handled)
	r, err := e.queries.GetRun(context.Background(), d.RunIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.StackID != stk || r.Type != run.Proposed || r.Commit != sha2 || r.Status != run.Ready {
		t.Errorf("run %+v", r)
	}
}

func TestBadDeliveriesAreRefusedOrIgnored(t *testing.T) {
	e := newEnv(t)
	e.startDrain(t, "drain-1", nil, nil)
	gh := e.integration(t, domainvcs.GitHub, "gh")
	e.integration(t, domainvcs.GitLab, "gl")
	e.stack(t, "app", repo, "main", "infra", gh)
	good := push("refs/heads/main", sha, "infra/main.tf")

	refused := []struct {
		name     string
		provider domainvcs.Provider
		hook     string
		event    string
		body     []byte
		sign     string
		code     int
	}{
		{"no signature", domainvcs.GitHub, "gh", "push", good, "", http.StatusUnauthorized},
		{"wrong secret", domainvcs.GitHub, "gh", "push", good, "guess", http.StatusUnauthorized},
		{"unknown integration", domainvcs.GitHub, "nope", "push", good, secret, http.StatusUnauthorized},
		{"another provider's integration", domainvcs.GitHub, "gl", "push", good, secret, http.StatusUnauthorized},
		{"gitlab wrong token", domainvcs.GitLab, "gl", "Push Hook", good, "guess", http.StatusUnauthorized},
		{"too large", domainvcs.GitHub, "gh", "push", []byte(`{"pad":"` + strings.Repeat("x", 70<<10) + `"}`), secret, http.StatusRequestEntityTooLarge},
		{"malformed JSON", domainvcs.GitHub, "gh", "push", []byte(`{"ref":`), secret, http.StatusBadRequest},
		{"unknown event type", domainvcs.GitHub, "gh", "issues", []byte(`{}`), secret, http.StatusOK},
		{"ping", domainvcs.GitHub, "gh", "ping", []byte(`{"zen":"x"}`), secret, http.StatusOK},
	}
	for i, tc := range refused {
		code, a := e.post(t, tc.provider, tc.hook, tc.event, fmt.Sprint("r-", i), tc.body, tc.sign)
		if code != tc.code || a["status"] == "recorded" {
			t.Errorf("%s: %d %v, want %d", tc.name, code, a, tc.code)
		}
	}
	if n := e.count(t, "WebhookDeliveryReceived"); n != 0 {
		t.Fatalf("%d deliveries recorded from refused requests", n)
	}

	ignored := []struct {
		name, reason string
		body         []byte
	}{
		{"tag", "tags do not queue runs", push("refs/tags/v1", sha)},
		{"deleted branch", "was deleted", []byte(`{"ref":"refs/heads/main","after":"` + strings.Repeat("0", 40) + `","deleted":true}`)},
		{"unknown repository", "no stack of the integration tracks repository", []byte(`{"ref":"refs/heads/main","after":"` + sha + `","repository":{"clone_url":"https://github.com/org/other.git"}}`)},
		{"other branch", "no stack of the integration tracks branch dev", push("refs/heads/dev", sha, "infra/x.tf")},
		{"outside the project root", "touches no stack's project root", push("refs/heads/main", sha, "README.md")},
		{"wrong shape", "malformed push payload", []byte(`{"ref":["refs/heads/main"]}`)},
	}
	for i, tc := range ignored {
		code, a := e.post(t, domainvcs.GitHub, "gh", "push", fmt.Sprint("i-", i), tc.body, secret)
		if code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", tc.name, code, a)
		}
		id := a["delivery_id"].(string)
		var d projections.DeliveryView
		await.Until(t, 15*time.Second, tc.name+" ignored", func() bool {
			d = e.delivery(t, id)
			return d.Status != string(delivery.Pending) && d.Status != ""
		})
		if d.Status != string(delivery.Ignored) || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: %s, reason %q, want IGNORED, %q", tc.name, d.Status, d.Reason, tc.reason)
		}
	}
	if n := e.count(t, "RunQueued"); n != 0 {
		t.Errorf("%d runs queued by bad deliveries", n)
	}
}

// TestTwoDrainsActOnEachDeliveryOnce sends deliveries to two drains at
// once: each is acted on by one of them, and queues its run once.
func TestTwoDrainsActOnEachDeliveryOnce(t *testing.T) {
	e := newEnv(t)
	var calls [2]atomic.Int64
	e.startDrain(t, "drain-1", counting{e.cmds, &calls[0]}, nil)
	e.startDrain(t, "drain-2", counting{e.cmds, &calls[1]}, nil)
	gh := e.integration(t, domainvcs.GitHub, "gh")
	e.stack(t, "app", repo, "main", "", gh)
	const n = 40
	for i := range n {
		code, a := e.post(t, domainvcs.GitHub, "gh", "push", fmt.Sprint("p-", i), push("refs/heads/main", sha), secret)
		if code != http.StatusAccepted {
			t.Fatalf("delivery %d: %d %v", i, code, a)
		}
	}
	await.Until(t, 30*time.Second, "every delivery handled", func() bool { return e.count(t, "WebhookDeliveryHandled") == n })
	if got := e.count(t, "RunQueued"); got != n {
		t.Errorf("%d runs queued for %d deliveries", got, n)
	}
	if calls[0].Load() == 0 || calls[1].Load() == 0 {
		t.Logf("one drain did all the work: %d and %d", calls[0].Load(), calls[1].Load())
	}
}

// counting counts the deliveries a drain acted on.
type counting struct {
	*commands.Service
	n *atomic.Int64
}

func (c counting) ActOnDelivery(ctx context.Context, id string, plan commands.DeliveryPlanner) (delivery.Status, []delivery.TriggeredRun, error) {
	c.n.Add(1)
	return c.Service.ActOnDelivery(ctx, id, plan)
}

// failing fails to act on deliveries while fail is set, as a command
// layer whose database keeps refusing would.
type failing struct {
	*commands.Service
	fail *atomic.Bool
}

func (f failing) ActOnDelivery(ctx context.Context, id string, plan commands.DeliveryPlanner) (delivery.Status, []delivery.TriggeredRun, error) {
	if f.fail.Load() {
		return "", nil, errors.New("the database refused")
	}
	return f.Service.ActOnDelivery(ctx, id, plan)
}

func TestFailingDeliveryIsPoisonedAndCanBeReplayed(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	e.startDrain(t, "drain-1", failing{e.cmds, &fail}, nil)
	gh := e.integration(t, domainvcs.GitHub, "gh")
	e.stack(t, "app", repo, "main", "", gh)
	code, a := e.post(t, domainvcs.GitHub, "gh", "push", "x-1", push("refs/heads/main", sha), secret)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, a)
	}
	id := a["delivery_id"].(string)
	d := e.awaitDelivery(t, id, delivery.Poisoned)
	if !strings.Contains(d.Reason, "the database refused") {
		t.Errorf("poison reason %q", d.Reason)
	}
	if n := e.count(t, "RunQueued"); n != 0 {
		t.Fatalf("%d runs queued by a poisoned delivery", n)
	}
	if err := e.cmds.ReplayDelivery(context.Background(), user, id); !errors.Is(err, nil) {
		t.Fatal(err)
	}
	// Still failing: poisoned again.
	await.Until(t, 15*time.Second, "poisoned again", func() bool { return e.count(t, "WebhookDeliveryPoisoned") == 2 })
	fail.Store(false)
	if err := e.cmds.ReplayDelivery(context.Background(), user, id); err != nil {
		t.Fatal(err)
	}
	d = e.awaitDelivery(t, id, delivery.Handled)
	if d.Attempts != 3 || len(d.RunIDs) != 1 {
		t.Errorf("after the replay: %+v", d)
	}
	if err := e.cmds.ReplayDelivery(context.Background(), user, id); !errors.Is(err, delivery.ErrNotReplayable) {
		t.Errorf("replay of a handled delivery: %v", err)
	}
}
