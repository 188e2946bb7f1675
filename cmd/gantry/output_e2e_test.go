package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// columns splits a table line into its cells (cells hold no double spaces).
func columns(line string) []string {
	var out []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// aligned reports whether every line of a table starts its columns where
// the header does.
func aligned(t *testing.T, table string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	starts := func(line string) []int {
		var out []int
		for i := range line {
			if line[i] != ' ' && (i == 0 || i >= 2 && line[i-1] == ' ' && line[i-2] == ' ') {
				out = append(out, i)
			}
		}
		return out
	}
	want := starts(lines[0])
	for _, l := range lines[1:] {
		if got := starts(l); !slices.Equal(got, want) {
			t.Errorf("line %q starts its columns at %v, the header at %v:\n%s", l, got, want, table)
		}
	}
}

func TestCLIOutputTablesAndJSON(t *testing.T) {
	srv := startServer(t)
	repo, head := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "web", "--repo", repo, "--project-root", "envs/prod", "--tool", "tofu",
		"--label", "team=web", "--label", "tier=1", "--description", "the web tier", "--autodeploy")
	srv.mustCLI(t, "stack", "create", "api-gateway", "--repo", repo, "--branch", "main")

	// stack list: a table by name, and JSON.
	list := srv.mustCLI(t, "stack", "list")
	aligned(t, list)
	rows := strings.Split(strings.TrimSpace(list), "\n")
	if got := columns(rows[0]); !slices.Equal(got, []string{"NAME", "ID", "BRANCH", "TOOL", "POOL", "LOCK", "RUN LOCK", "QUEUED"}) {
		t.Errorf("stack list header %v", got)
	}
	if len(rows) != 3 || columns(rows[1])[0] != "api-gateway" || columns(rows[2])[0] != "web" || columns(rows[2])[3] != "tofu" {
		t.Errorf("stack list:\n%s", list)
	}
	var listed struct {
		Stacks []struct {
			Name         string   `json:"name"`
			Tool         string   `json:"tool"`
			ProjectRoot  string   `json:"project_root"`
			Labels       []string `json:"labels"`
			WorkerPoolID string   `json:"worker_pool_id"`
			Autodeploy   bool     `json:"autodeploy"`
		} `json:"stacks"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "stack", "list")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Stacks) != 2 || listed.Stacks[1].Name != "web" || listed.Stacks[1].Tool != "TOOL_TOFU" ||
		listed.Stacks[1].ProjectRoot != "envs/prod" || !slices.Equal(listed.Stacks[1].Labels, []string{"team=web", "tier=1"}) ||
		listed.Stacks[1].WorkerPoolID != "wp_public" || !listed.Stacks[1].Autodeploy {
		t.Errorf("stack list -o json: %+v", listed)
	}

	// stack show: key/value lines, and JSON of the Stack message.
	show := srv.mustCLI(t, "stack", "show", "WEB")
	for _, want := range []string{`(?m)^name\s+web$`, `(?m)^project root\s+envs/prod$`, `(?m)^tool\s+tofu$`, `(?m)^labels\s+team=web, tier=1$`,
		`(?m)^autodeploy\s+yes$`, `(?m)^worker pool\s+wp_public$`, `(?m)^created\s+\S+Z by user:admin$`} {
		if !regexpMatch(want, show) {
			t.Errorf("stack show does not match %s:\n%s", want, show)
		}
	}
	var shown struct {
		ID          string `json:"id"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "stack", "show", "web")), &shown); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(shown.ID, "stk_") || shown.Description != "the web tier" {
		t.Errorf("stack show -o json: %+v", shown)
	}

	// run show: details and the state history, as a table and as JSON.
	out := srv.mustCLI(t, "-o", "json", "run", "trigger", "web", "--proposed")
	var trig struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &trig); err != nil {
		t.Fatal(err)
	}
	srv.mustCLI(t, "run", "discard", trig.ID, "--note", "superseded")
	runShow := srv.mustCLI(t, "run", "show", trig.ID)
	details, history, ok := strings.Cut(runShow, "\n\n")
	if !ok {
		t.Fatalf("run show has no history table:\n%s", runShow)
	}
	for _, want := range []string{`(?m)^type\s+PROPOSED$`, `(?m)^state\s+DISCARDED$`, `(?m)^commit\s+` + head + `$`} {
		if !regexpMatch(want, details) {
			t.Errorf("run show does not match %s:\n%s", want, details)
		}
	}
	aligned(t, history)
	hrows := strings.Split(strings.TrimSpace(history), "\n")
	// The WORKER column names the worker holding the run at each change
	// (none here: no worker took the run).
	if len(hrows) != 4 || !slices.Equal(columns(hrows[0]), []string{"STATE", "TIME", "ACTOR", "WORKER", "NOTE"}) ||
		columns(hrows[1])[0] != "QUEUED" || columns(hrows[2])[0] != "READY" ||
		!slices.Equal(slices.Delete(columns(hrows[3]), 1, 2), []string{"DISCARDED", "user:admin", "-", "superseded"}) {
		t.Errorf("run show history:\n%s", history)
	}
	var shownRun struct {
		State   string `json:"state"`
		History []struct {
			State string `json:"state"`
			Actor string `json:"actor"`
			Note  string `json:"note"`
			Time  string `json:"time"`
		} `json:"history"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "run", "show", trig.ID)), &shownRun); err != nil {
		t.Fatal(err)
	}
	if shownRun.State != "RUN_STATE_DISCARDED" || len(shownRun.History) != 3 || shownRun.History[2].Note != "superseded" || shownRun.History[0].Time == "" {
		t.Errorf("run show -o json: %+v", shownRun)
	}

	// pool show: details and the stacks using the pool.
	csr, _ := rsaCSR(t, 2048)
	csrFile := filepath.Join(t.TempDir(), "pool.csr")
	if err := os.WriteFile(csrFile, []byte(csr), 0o600); err != nil {
		t.Fatal(err)
	}
	created := srv.mustCLI(t, "pool", "create", "private", "--csr", csrFile)
	if !regexpMatch(`(?m)^Pool token \(shown once.*\n[A-Za-z0-9+/=]{100,}$`, created) {
		t.Errorf("pool create does not print the token:\n%s", created)
	}
	admin := srv.as(srv.adminToken(t))
	if _, err := admin.stacks.UpdateStack(testCtx(t), connect.NewRequest(&gantryv1.UpdateStackRequest{
		Stack: "web", WorkerPoolId: "private", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"worker_pool_id"}},
	})); err != nil {
		t.Fatal(err)
	}
	poolShow := srv.mustCLI(t, "pool", "show", "private")
	poolDetails, usedBy, ok := strings.Cut(poolShow, "\n\n")
	if !ok {
		t.Fatalf("pool show has no used-by table:\n%s", poolShow)
	}
	for _, want := range []string{`(?m)^name\s+private$`, `(?m)^certificate\s+RSA 2048-bit, serial [0-9a-f]+$`, `(?m)^fingerprint\s+[0-9a-f]{64}$`,
		`(?m)^generation\s+1$`, `(?m)^workers\s+0 \(0 busy\)$`, `(?m)^drift run limit\s+no limit$`} {
		if !regexpMatch(want, poolDetails) {
			t.Errorf("pool show does not match %s:\n%s", want, poolDetails)
		}
	}
	if urows := strings.Split(strings.TrimSpace(usedBy), "\n"); len(urows) != 2 || columns(urows[1])[0] != "web" {
		t.Errorf("pool show used by:\n%s", usedBy)
	}
	var pj struct {
		Pool struct {
			Name string `json:"name"`
		} `json:"pool"`
		UsedBy []struct {
			Name string `json:"name"`
		} `json:"used_by"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "pool", "show", "private")), &pj); err != nil {
		t.Fatal(err)
	}
	if pj.Pool.Name != "private" || len(pj.UsedBy) != 1 || pj.UsedBy[0].Name != "web" {
		t.Errorf("pool show -o json: %+v", pj)
	}
	if list := srv.mustCLI(t, "pool", "list"); !regexpMatch(`(?m)^private\s+wp_\w+\s+0\s+0\s+-\s+\S+$`, list) {
		t.Errorf("pool list:\n%s", list)
	}
}

func TestStackRenameAndDeleteFreeTheirNames(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	admin := srv.as(srv.adminToken(t))
	srv.mustCLI(t, "stack", "create", "old-name", "--repo", repo)
	resp, err := admin.stacks.UpdateStack(testCtx(t), connect.NewRequest(&gantryv1.UpdateStackRequest{
		Stack: "old-name", Name: "new-name", Branch: "release", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "branch"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	renamed := resp.Msg.GetStack()
	if renamed.GetName() != "new-name" || renamed.GetBranch() != "release" || renamed.GetRepositoryUrl() != repo {
		t.Errorf("after update: %v", renamed)
	}
	if _, err := admin.stacks.GetStack(testCtx(t), connect.NewRequest(&gantryv1.GetStackRequest{Stack: "old-name"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("old name after rename: %v, want NotFound", err)
	}
	// The old name is free again, the new one taken.
	srv.mustCLI(t, "stack", "create", "old-name", "--repo", repo)
	if _, err := srv.cli(t, "stack", "create", "New-Name", "--repo", repo); err == nil || !strings.Contains(err.Error(), "already_exists") {
		t.Errorf("creating a taken name: %v", err)
	}
	if _, err := admin.stacks.DeleteStack(testCtx(t), connect.NewRequest(&gantryv1.DeleteStackRequest{Stack: "new-name"})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.stacks.GetStack(testCtx(t), connect.NewRequest(&gantryv1.GetStackRequest{Stack: renamed.GetId()})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("deleted stack: %v, want NotFound", err)
	}
	srv.mustCLI(t, "stack", "create", "new-name", "--repo", repo)
	if list := srv.mustCLI(t, "stack", "list"); strings.Count(list, "\n") != 3 {
		t.Errorf("stack list after delete and re-create:\n%s", list)
	}
}
