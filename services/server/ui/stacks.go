package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

const (
	// stacksPageSize is how many stacks a page of the stacks list shows.
	stacksPageSize = 20
	// runsPageSize is how many runs a page of a stack's runs shows.
	runsPageSize = 20
	// versionsPageSize is how many state versions a stack's page shows.
	versionsPageSize = 20
	// lastRunLookups bounds the concurrent ListRuns calls of a stacks page.
	lastRunLookups = 8
)

type stackRow struct {
	Stack   *gantryv1.Stack
	LastRun *gantryv1.Run
}

type stacksData struct {
	Stacks    []stackRow
	Next      string
	FirstPage bool
}

func (u *UI) stacksPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	token := r.URL.Query().Get("page")
	res, err := u.c.stacks.ListStacks(ctx, connect.NewRequest(&gantryv1.ListStacksRequest{PageSize: stacksPageSize, PageToken: token}))
	if err != nil {
		u.fail(w, r, "list the stacks", err)
		return
	}
	rows := make([]stackRow, len(res.Msg.GetStacks()))
	errs := make([]error, len(rows))
	sem := make(chan struct{}, lastRunLookups)
	var wg sync.WaitGroup
	for i, s := range res.Msg.GetStacks() {
		rows[i].Stack = s
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			runs, err := u.c.runs.ListRuns(ctx, connect.NewRequest(&gantryv1.ListRunsRequest{Stack: s.GetId(), PageSize: 1}))
			if err != nil {
				errs[i] = err
				return
			}
			if rs := runs.Msg.GetRuns(); len(rs) > 0 {
				rows[i].LastRun = rs[0]
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			u.fail(w, r, "list the stacks' runs", err)
			return
		}
	}
	u.render(w, r, http.StatusOK, "stacks", page{Title: "Stacks", Data: stacksData{Stacks: rows, Next: res.Msg.GetNextPageToken(), FirstPage: token == ""}})
}

type stackData struct {
	Stack     *gantryv1.Stack
	Runs      []*gantryv1.Run
	NextRuns  string
	FirstRuns bool
	Env       []*gantryv1.EnvVar
	Files     []*gantryv1.MountedFile
	Versions  []*gantryv1.StateVersion
	// VersionsTotal is how many versions the stack has; VersionsFrom the
	// offset of the first one shown (newest first), NextVersions the next
	// page's offset (0: none).
	VersionsTotal, VersionsFrom, NextVersions int
}

func (u *UI) stackPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	name := r.PathValue("stack")
	st, err := u.c.stacks.GetStack(ctx, connect.NewRequest(&gantryv1.GetStackRequest{Stack: name}))
	if err != nil {
		u.fail(w, r, "read the stack", err)
		return
	}
	s := st.Msg.GetStack()
	q := r.URL.Query()
	d := stackData{Stack: s, FirstRuns: q.Get("runs") == ""}
	runs, err := u.c.runs.ListRuns(ctx, connect.NewRequest(&gantryv1.ListRunsRequest{Stack: s.GetId(), PageSize: runsPageSize, PageToken: q.Get("runs")}))
	if err != nil {
		u.fail(w, r, "list the stack's runs", err)
		return
	}
	d.Runs, d.NextRuns = runs.Msg.GetRuns(), runs.Msg.GetNextPageToken()
	env, err := u.c.env.ListStackEnv(ctx, connect.NewRequest(&gantryv1.ListStackEnvRequest{Stack: s.GetId()}))
	if err != nil {
		u.fail(w, r, "list the stack's environment", err)
		return
	}
	d.Env, d.Files = env.Msg.GetEnv(), env.Msg.GetFiles()
	if s.GetManagedState() {
		vs, err := u.c.states.ListStateVersions(ctx, connect.NewRequest(&gantryv1.ListStateVersionsRequest{Stack: s.GetId()}))
		if err != nil {
			u.fail(w, r, "list the stack's state versions", err)
			return
		}
		all := vs.Msg.GetVersions()
		from, _ := strconv.Atoi(q.Get("versions"))
		from = max(0, min(from, len(all)))
		d.VersionsTotal, d.VersionsFrom = len(all), from
		// Newest first: versions come oldest first.
		for i := len(all) - 1 - from; i >= 0 && len(d.Versions) < versionsPageSize; i-- {
			d.Versions = append(d.Versions, all[i])
		}
		if from+versionsPageSize < len(all) {
			d.NextVersions = from + versionsPageSize
		}
	}
	u.render(w, r, http.StatusOK, "stack", page{Title: "Stack " + s.GetName(), Notice: notice(q.Get("done")), Data: d})
}

// triggerRun queues a tracked or proposed run (RunService.TriggerRun).
func (u *UI) triggerRun(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	typ := gantryv1.RunType_RUN_TYPE_TRACKED
	switch r.PostForm.Get("type") {
	case "", "tracked":
	case "proposed":
		typ = gantryv1.RunType_RUN_TYPE_PROPOSED
	default:
		u.render(w, r, http.StatusBadRequest, "error", page{Title: "Bad request", Data: errorData{Message: fmt.Sprintf("type: %q is not a run type; use tracked or proposed.", r.PostForm.Get("type"))}})
		return
	}
	res, err := u.c.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: r.PathValue("stack"), Type: typ, Commit: strings.TrimSpace(r.PostForm.Get("commit"))}))
	if err != nil {
		u.fail(w, r, "trigger a run", err)
		return
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(res.Msg.GetRun().GetId())+"?done=triggered", http.StatusSeeOther)
}

// downloadState sends a state version as a file (StateService.DownloadState,
// administrators only; the API records the download).
func (u *UI) downloadState(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	v, ok := u.stateVersion(w, r)
	if !ok {
		return
	}
	res, err := u.c.states.DownloadState(ctx, connect.NewRequest(&gantryv1.DownloadStateRequest{Stack: r.PathValue("stack"), Version: v}))
	if err != nil {
		u.fail(w, r, "download the state", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-v%d.tfstate"`, safeFileName(r.PathValue("stack")), v))
	_, _ = w.Write(res.Msg.GetState())
}

// stateVersion reads the path's {version}, a state version number; it
// answers 400 and reports false for anything else.
func (u *UI) stateVersion(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil || v < 1 {
		u.render(w, r, http.StatusBadRequest, "error", page{Title: "Bad request", Data: errorData{Message: "version: must be a version number (1, 2, …)."}})
		return 0, false
	}
	return v, true
}

func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// rollbackState restores a state version (StateService.RollbackState).
func (u *UI) rollbackState(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	v, ok := u.stateVersion(w, r)
	if !ok {
		return
	}
	if _, err := u.c.states.RollbackState(ctx, connect.NewRequest(&gantryv1.RollbackStateRequest{Stack: r.PathValue("stack"), Version: v})); err != nil {
		u.fail(w, r, "roll the state back", err)
		return
	}
	http.Redirect(w, r, "/stacks/"+url.PathEscape(r.PathValue("stack"))+"?done=rolled-back", http.StatusSeeOther)
}

// stackLock takes or releases the stack's manual lock (StackService.LockStack
// and UnlockStack; releasing another's lock needs an administrator).
func (u *UI) stackLock(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stack")
	u.act(w, r, "stack", "/stacks/"+url.PathEscape(name),
		action{"lock", "locked", rpc(u.c.stacks.LockStack, &gantryv1.LockStackRequest{Stack: name, Note: strings.TrimSpace(r.PostForm.Get("note"))})},
		action{"unlock", "unlocked", rpc(u.c.stacks.UnlockStack, &gantryv1.UnlockStackRequest{Stack: name, Force: r.PostForm.Get("force") == "true"})})
}

// notices are the messages of the actions a redirect names (?done=…).
var notices = map[string]string{
	"triggered":   "The run was queued.",
	"locked":      "You hold the stack's manual lock: only you may trigger tracked runs and tasks.",
	"unlocked":    "The stack's manual lock was released.",
	"rolled-back": "The state was rolled back: a new version holds the older content.",
	"confirm":     "The run was confirmed.",
	"discard":     "The run was discarded.",
	"stop":        "The run was asked to stop.",
	"cancel":      "The run was canceled.",
	"drain":       "The worker was drained: it takes no new runs.",
	"undrain":     "The worker takes runs again.",
	"cycle":       "Every worker of the pool was asked to exit.",
}

func notice(done string) string { return notices[done] }
