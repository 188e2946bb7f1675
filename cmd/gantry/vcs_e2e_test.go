package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/server/vcs"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// TestWebhookPushQueuesRunEndToEnd adds a GitHub integration and a stack
// tied to it with the CLI, sends a signed push to the server's webhook
// endpoint, and finds the run the drain queued at the pushed commit.
func TestWebhookPushQueuesRunEndToEnd(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := srv.mustCLI(t, "vcs", "add", "github", "acme", "--webhook-secret-file", secretFile)
	if !strings.Contains(out, "/webhooks/github/acme") {
		t.Errorf("vcs add shows no webhook URL:\n%s", out)
	}
	if out := srv.mustCLI(t, "vcs", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "github") {
		t.Errorf("vcs list:\n%s", out)
	}
	srv.mustCLI(t, "stack", "create", "app", "--repo", "https://github.com/org/app.git", "--vcs", "acme")
	if out := srv.mustCLI(t, "stack", "show", "app"); !regexpMatch(`\nvcs\s+vcs_`, out) {
		t.Errorf("stack show does not name the integration:\n%s", out)
	}

	// Bad input: a clear error naming the field, nothing changed.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"vcs", "add", "bitbucket", "x", "--webhook-secret-file", secretFile}, `provider "bitbucket"`},
		{[]string{"vcs", "add", "github", "acme", "--webhook-secret-file", secretFile}, "already"},
		{[]string{"vcs", "add", "github", "bad name", "--webhook-secret-file", secretFile}, "name"},
		{[]string{"vcs", "add", "github", "y", "--webhook-secret-file", filepath.Join(dir, "missing")}, "--webhook-secret-file"},
		{[]string{"stack", "create", "other", "--repo", "https://github.com/org/app.git", "--vcs", "nope"}, "vcs_integration"},
		{[]string{"vcs", "replay", "dlv_unknown"}, "not found"},
		{[]string{"vcs", "deliveries", "--status", "lost"}, "--status"},
		{[]string{"stack", "drift", "set", "app", "--cron", "every now and then"}, "cron"},
	} {
		if _, err := srv.cli(t, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("gantry %s: %v, want an error with %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}

	const sha = "0123456789abcdef0123456789abcdef01234567"
	body := []byte(`{"ref":"refs/heads/main","after":"` + sha + `","repository":{"full_name":"org/app","clone_url":"https://github.com/org/app.git"},"commits":[]}`)
	send := func(signature string) int {
		req, err := http.NewRequest(http.MethodPost, srv.url+"/webhooks/github/acme", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "e2e-1")
		req.Header.Set("X-Hub-Signature-256", signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(vcs.SignGitHub([]byte("wrong"), body)); code != http.StatusUnauthorized {
		t.Fatalf("a bad signature: %d", code)
	}
	if code := send(vcs.SignGitHub([]byte("s3cret"), body)); code != http.StatusAccepted {
		t.Fatalf("a signed push: %d", code)
	}
	await.Until(t, 20*time.Second, "the push's run", func() bool {
		return strings.Contains(srv.mustCLI(t, "run", "list", "app"), sha[:12])
	})
	var list struct {
		Deliveries []struct {
			Status string   `json:"status"`
			RunIDs []string `json:"run_ids"`
		} `json:"deliveries"`
	}
	await.Until(t, 20*time.Second, "the delivery handled", func() bool {
		if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "vcs", "deliveries")), &list); err != nil {
			t.Fatal(err)
		}
		return len(list.Deliveries) == 1 && list.Deliveries[0].Status == "DELIVERY_STATUS_HANDLED"
	})
	if len(list.Deliveries[0].RunIDs) != 1 {
		t.Errorf("delivery: %+v", list.Deliveries[0])
	}

	// Scheduled tasks: added, listed, deleted; bad input refused.
	id := strings.TrimSpace(srv.mustCLI(t, "stack", "schedule", "add", "app", "--cron", "0 3 * * *", "--task", "terraform state list"))
	if out := srv.mustCLI(t, "stack", "schedule", "list", "app"); !strings.Contains(out, id) || !strings.Contains(out, "TASK") || !strings.Contains(out, "terraform state list") {
		t.Errorf("schedule list:\n%s", out)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"stack", "schedule", "add", "app", "--cron", "@daily"}, "--tracked or --task"},
		{[]string{"stack", "schedule", "add", "app", "--cron", "@daily", "--tracked", "--task", "ls"}, "not both"},
		{[]string{"stack", "schedule", "add", "nope", "--cron", "@daily", "--tracked"}, "not found"},
		{[]string{"stack", "schedule", "delete", "sch_unknown"}, "not found"},
	} {
		if _, err := srv.cli(t, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("gantry %s: %v, want an error with %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
	srv.mustCLI(t, "stack", "schedule", "delete", id)
	if out := srv.mustCLI(t, "stack", "schedule", "list", "app"); strings.Contains(out, id) {
		t.Errorf("a deleted schedule is listed:\n%s", out)
	}
}

// TestDriftScheduleRecordsDriftEndToEnd schedules drift detection on a
// stack whose code always plans a change, and finds the drift recorded
// with the changed resource's address, and the reconciling tracked run.
func TestDriftScheduleRecordsDriftEndToEnd(t *testing.T) {
	srv := startServer(t, func(c *serverConfig) {
		c.publicWorkers, c.dataDir, c.path = 1, t.TempDir(), os.Getenv("PATH")
	})
	repo := newTestRepo(t, "resource \"terraform_data\" \"drifted\" {\n  input = \"x\"\n}\n")
	srv.mustCLI(t, "stack", "create", "drifty", "--repo", repo.url())
	srv.mustCLI(t, "stack", "drift", "set", "drifty", "--cron", "@every 2s", "--reconcile")
	if out := srv.mustCLI(t, "stack", "schedule", "list", "drifty"); !strings.Contains(out, "DRIFT") || !strings.Contains(out, "@every 2s") {
		t.Errorf("schedule list:\n%s", out)
	}
	var detections struct {
		Detections []struct {
			RunID          string   `json:"run_id"`
			Resources      []string `json:"resources"`
			ReconcileRunID string   `json:"reconcile_run_id"`
		} `json:"detections"`
	}
	await.Until(t, 2*runEndTimeout, "drift detected", func() bool {
		if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "stack", "drift", "list", "drifty")), &detections); err != nil {
			t.Fatal(err)
		}
		return len(detections.Detections) > 0
	})
	srv.mustCLI(t, "stack", "drift", "unset", "drifty")
	d := detections.Detections[len(detections.Detections)-1]
	if len(d.Resources) != 1 || d.Resources[0] != "terraform_data.drifted" || d.ReconcileRunID == "" {
		t.Fatalf("detection %+v", d)
	}
	if out := srv.mustCLI(t, "run", "show", d.RunID); !regexpMatch(`drift detection\s+yes`, out) {
		t.Errorf("the drift run:\n%s", out)
	}
	if out := srv.mustCLI(t, "run", "show", d.ReconcileRunID); !strings.Contains(out, "TRACKED") || !strings.Contains(out, "system:drift") {
		t.Errorf("the reconciling run:\n%s", out)
	}
}
