package drain_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/delivery"
	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/vcs"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// fakeVCS is the VCS's API (it is outside this machine): it records the
// commit statuses it is sent.
type fakeVCS struct {
	mu       sync.Mutex
	statuses []map[string]string
	paths    []string
	auth     []string
}

func (f *fakeVCS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]string
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, body)
	f.paths = append(f.paths, r.URL.EscapedPath())
	f.auth = append(f.auth, r.Header.Get("Authorization")+r.Header.Get("PRIVATE-TOKEN"))
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeVCS) states() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.statuses {
		out = append(out, s["state"])
	}
	return out
}

func TestWebhookRunsReportTheirStateToTheCommit(t *testing.T) {
	for _, provider := range []domainvcs.Provider{domainvcs.GitHub, domainvcs.GitLab} {
		t.Run(string(provider), func(t *testing.T) {
			e := newEnv(t)
			api := &fakeVCS{}
			srv := httptest.NewServer(api)
			t.Cleanup(srv.Close)
			e.startDrain(t, "drain-1", nil, &vcs.Reporter{Origins: e.cmds, ServerURL: "https://gantry.example.com"})
			id, err := e.cmds.AddVCSIntegration(context.Background(), user, commands.VCSIntegration{Name: "hub", Provider: provider,
				APIURL: srv.URL, WebhookSecret: []byte(secret), Token: []byte("tok\n")})
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			event, wantPath, wantAuth, pending, canceled := "push", "/repos/org/app/statuses/"+sha, "Bearer tok", "pending", "error"
			if provider == domainvcs.GitLab {
				event, wantPath, wantAuth, canceled = "Push Hook", "/projects/group%2Fapp/statuses/"+sha, "tok", "canceled"
				e.stack(t, "app", "https://gitlab.example.com/group/app.git", "main", "", id)
				body = []byte(`{"ref":"refs/heads/main","after":"` + sha + `","project":{"path_with_namespace":"group/app","git_http_url":"https://gitlab.example.com/group/app.git"}}`)
			} else {
				e.stack(t, "app", repo, "main", "", id)
				body = push("refs/heads/main", sha)
			}
			code, a := e.post(t, provider, "hub", event, "s-1", body, secret)
			if code != http.StatusAccepted {
				t.Fatalf("%d %v", code, a)
			}
			d := e.awaitDelivery(t, a["delivery_id"].(string), delivery.Handled)
			await.Until(t, 15*time.Second, "a pending status", func() bool { return len(api.states()) >= 1 })
			if err := e.cmds.CancelRun(context.Background(), user, d.RunIDs[0], "not now"); err != nil {
				t.Fatal(err)
			}
			await.Until(t, 15*time.Second, "the final status", func() bool {
				s := api.states()
				return len(s) > 0 && s[len(s)-1] == canceled
			})
			api.mu.Lock()
			defer api.mu.Unlock()
			if api.statuses[0]["state"] != pending || api.paths[0] != wantPath || api.auth[0] != wantAuth {
				t.Errorf("first status %v to %s with %q", api.statuses[0], api.paths[0], api.auth[0])
			}
			last := api.statuses[len(api.statuses)-1]
			if last["target_url"] != "https://gantry.example.com/runs/"+d.RunIDs[0] || (last["context"]+last["name"]) != "gantry/app" {
				t.Errorf("last status %v", last)
			}
		})
	}
}
