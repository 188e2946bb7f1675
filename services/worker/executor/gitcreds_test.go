package executor_test

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// privateGitServer serves repo's parent over Git's smart HTTP protocol,
// to requests with the basic credentials user:password only.
func privateGitServer(t *testing.T, repo *testRepo, user, password string) (url string, refused *atomic.Int64) {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo.dir), "GIT_HTTP_EXPORT_ALL=1"},
	}
	refused = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(repo.dir), refused
}

// TestPrivateRepositoryClonesWithTheIntegrationsToken clones a repository
// that needs credentials: with the job's, the run goes through, and the
// token is neither in the logs nor in the clone's configuration.
func TestPrivateRepositoryClonesWithTheIntegrationsToken(t *testing.T) {
	const token = "ghp-private-token-4242"
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	url, refused := privateGitServer(t, repo, "x-access-token", token)
	h := newHarness(t, nil)

	j := job(repo, commit)
	j.Type, j.RepositoryURL = run.Proposed, url
	j.Debug = true
	j.Git = &protocol.GitCredentials{Username: "x-access-token", Password: token}
	j.Hooks.BeforeInit = []string{"git config --list --show-origin | grep -v '^command line' || true", "env | grep -c GIT_CONFIG || true"}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	if res.Status != run.Finished {
		t.Fatalf("with the token: %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	logs := rec.allLogs()
	if strings.Contains(logs, token) || strings.Contains(strings.ToLower(logs), "extraheader") {
		t.Errorf("the token or its header shows in the logs or the clone's configuration:\n%s", logs)
	}

	// Without credentials the clone is refused.
	before := refused.Load()
	j = job(repo, commit)
	j.Type, j.RepositoryURL = run.Proposed, url
	rec = newRecorder()
	res = h.run(t, j, rec)
	if res.Status != run.Failed || refused.Load() == before {
		t.Fatalf("without credentials: %s %q (refused %d)", res.Status, res.Note, refused.Load()-before)
	}
}
