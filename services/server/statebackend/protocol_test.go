package statebackend_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/services/server/statebackend"
)

const lineageA = "6f1c1f2e-0000-4000-8000-00000000000a"

func lockInfo(id string) []byte {
	return fmt.Appendf(nil, `{"ID":%q,"Operation":"OperationTypeApply","Info":"","Who":"w@h","Version":"1.11.4","Created":"2026-11-23T10:00:00Z","Path":""}`, id)
}

func md5Header(body []byte) http.Header {
	sum := md5.Sum(body)
	return http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum[:])}}
}

// TestProtocol walks through every method of the http backend protocol with
// the answers terraform relies on.
func TestProtocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	url := e.stateURL(stk)

	if status, body, _ := e.do(http.MethodGet, url, &c, nil, nil); status != http.StatusNoContent || body != "" {
		t.Fatalf("GET without a state: %d %q", status, body)
	}

	s1 := stateJSON(1, lineageA, "one")
	if status, body, _ := e.do(http.MethodPost, url, &c, s1, md5Header(s1)); status != http.StatusOK {
		t.Fatalf("POST: %d %s", status, body)
	}
	status, body, hdr := e.do(http.MethodGet, url, &c, nil, nil)
	if status != http.StatusOK || body != string(s1) || hdr.Get("Content-MD5") != md5Header(s1).Get("Content-MD5") || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %v %q", status, hdr, body)
	}

	// A retried POST of the same bytes stores nothing new.
	before := e.counts()
	if status, body, _ := e.do(http.MethodPost, url, &c, s1, nil); status != http.StatusOK {
		t.Fatalf("repeated POST: %d %s", status, body)
	}
	if after := e.counts(); after != before {
		t.Fatalf("repeated POST changed %+v to %+v", before, after)
	}

	// LOCK, and a second LOCK gets 423 with the holder's info.
	infoA, infoB := lockInfo("lock-a"), lockInfo("lock-b")
	if status, body, _ := e.do("LOCK", url, &c, infoA, md5Header(infoA)); status != http.StatusOK {
		t.Fatalf("LOCK: %d %s", status, body)
	}
	if status, body, _ := e.do("LOCK", url, &c, infoA, nil); status != http.StatusOK {
		t.Fatalf("LOCK again with the same id (a retry): %d %s", status, body)
	}
	status, body, hdr = e.do("LOCK", url, &c, infoB, nil)
	if status != http.StatusLocked || body != string(infoA) || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("LOCK while locked: %d %v %s", status, hdr, body)
	}

	// POST while locked: only with the holder's ID.
	s2 := stateJSON(2, lineageA, "two")
	if status, body, _ := e.do(http.MethodPost, url, &c, s2, nil); status != http.StatusLocked || body != string(infoA) {
		t.Fatalf("POST without the lock id: %d %s", status, body)
	}
	if status, body, _ := e.do(http.MethodPost, url+"?ID=lock-b", &c, s2, nil); status != http.StatusLocked {
		t.Fatalf("POST with another lock id: %d %s", status, body)
	}
	if status, body, _ := e.do(http.MethodPost, url+"?ID=lock-a", &c, s2, md5Header(s2)); status != http.StatusOK {
		t.Fatalf("POST with the lock id: %d %s", status, body)
	}

	// UNLOCK with the wrong id is refused; with the right one it releases.
	if status, _, _ := e.do("UNLOCK", url, &c, infoB, nil); status != http.StatusLocked {
		t.Fatalf("UNLOCK with another id: %d", status)
	}
	if status, body, _ := e.do("UNLOCK", url, &c, infoA, md5Header(infoA)); status != http.StatusOK {
		t.Fatalf("UNLOCK: %d %s", status, body)
	}
	if status, body, _ := e.do("UNLOCK", url, &c, infoA, nil); status != http.StatusOK {
		t.Fatalf("UNLOCK when not locked: %d %s", status, body)
	}

	// A write naming a lock that is not held (it was released) is refused.
	s3 := stateJSON(3, lineageA, "three")
	if status, body, _ := e.do(http.MethodPost, url+"?ID=lock-a", &c, s3, nil); status != http.StatusConflict || !strings.Contains(body, "lock-a") {
		t.Fatalf("POST naming a released lock: %d %s", status, body)
	}

	// DELETE: GET finds nothing, versions stay listed, and the next write
	// may start a new lineage.
	if status, body, _ := e.do(http.MethodDelete, url, &c, nil, nil); status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	if status, _, _ := e.do(http.MethodGet, url, &c, nil, nil); status != http.StatusNoContent {
		t.Fatalf("GET after DELETE: %d", status)
	}
	s4 := stateJSON(0, "another-lineage", "four")
	if status, body, _ := e.do(http.MethodPost, url, &c, s4, nil); status != http.StatusOK {
		t.Fatalf("POST after DELETE: %d %s", status, body)
	}
	vs := e.state(stk).Versions()
	if len(vs) != 3 || vs[2].Lineage != "another-lineage" || vs[2].Serial != 0 {
		t.Fatalf("versions: %+v", vs)
	}
	for i, v := range vs {
		if v.Version != i+1 || v.BlobKey != fmt.Sprintf("state/%s/%d-%s", stk, v.Version, v.SHA256) {
			t.Errorf("version %d: %+v", i+1, v)
		}
	}
	want := []string{"StateVersionWritten", "StateLocked", "StateVersionWritten", "StateUnlocked", "StateDeleted", "StateVersionWritten"}
	if got := e.stateEvents(stk); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	if status, _, hdr := e.do(http.MethodPut, url, &c, s4, nil); status != http.StatusMethodNotAllowed || !strings.Contains(hdr.Get("Allow"), "LOCK") {
		t.Fatalf("PUT: %d %v", status, hdr)
	}
	if status, _, _ := e.do(http.MethodGet, e.srv.URL+statebackend.PathPrefix+"not-a-stack", &c, nil, nil); status != http.StatusNotFound {
		t.Fatalf("GET of a path that names no stack: %d", status)
	}
}

// TestDenied sends requests that must be refused, each with its status and
// without changing any event or blob.
func TestDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{MaxStateSize: 4096})
	stkA, stkB := e.createStack(true), e.createStack(true)
	applyRun := e.newRun(stkA, run.Tracked, run.Applying)
	apply := e.mint(stkA, applyRun, run.PhaseApplying)
	planRun := e.newRun(stkA, run.Proposed, run.Planning)
	plan := e.mint(stkA, planRun, run.PhasePlanning)
	doneRun := e.newRun(stkA, run.Tracked, run.Applying)
	done := e.mint(stkA, doneRun, run.PhaseApplying)
	e.advance(doneRun, run.Finished)
	wrongPassword := apply
	wrongPassword.Password = strings.Repeat("x", len(apply.Password))
	unknownUser := apply
	unknownUser.Username = "gst_" + strings.Repeat("a", 26)

	urlA, urlB := e.stateURL(stkA), e.stateURL(stkB)
	s2 := stateJSON(2, lineageA, "two")
	if status, body, _ := e.do(http.MethodPost, urlA, &apply, s2, nil); status != http.StatusOK {
		t.Fatalf("setup POST: %d %s", status, body)
	}
	garbage := make([]byte, 512)
	_, _ = rand.Read(garbage)

	type request struct {
		method, url string
		creds       *statebackend.Credentials
		body        []byte
		header      http.Header
	}
	cases := []struct {
		name   string
		req    request
		status int
		body   string // a substring the answer must contain
	}{
		{"no credentials", request{http.MethodGet, urlA, nil, nil, nil}, http.StatusUnauthorized, ""},
		{"no credentials, POST", request{http.MethodPost, urlA, nil, stateJSON(3, lineageA, "x"), nil}, http.StatusUnauthorized, ""},
		{"wrong password", request{http.MethodGet, urlA, &wrongPassword, nil, nil}, http.StatusUnauthorized, ""},
		{"unknown username", request{http.MethodGet, urlA, &unknownUser, nil, nil}, http.StatusUnauthorized, ""},
		{"credentials of a finished run, GET", request{http.MethodGet, urlA, &done, nil, nil}, http.StatusForbidden, "FINISHED"},
		{"credentials of a finished run, POST", request{http.MethodPost, urlA, &done, stateJSON(3, lineageA, "x"), nil}, http.StatusForbidden, "FINISHED"},
		{"credentials of a finished run, LOCK", request{"LOCK", urlA, &done, lockInfo("l"), nil}, http.StatusForbidden, "FINISHED"},
		{"stack A's credentials on stack B, GET", request{http.MethodGet, urlB, &apply, nil, nil}, http.StatusForbidden, stkB},
		{"stack A's credentials on stack B, POST", request{http.MethodPost, urlB, &apply, stateJSON(3, lineageA, "x"), nil}, http.StatusForbidden, stkB},
		{"planning credentials on POST", request{http.MethodPost, urlA, &plan, stateJSON(3, lineageA, "x"), nil}, http.StatusForbidden, "may read"},
		{"planning credentials on DELETE", request{http.MethodDelete, urlA, &plan, nil, nil}, http.StatusForbidden, "may read"},
		{"garbage body", request{http.MethodPost, urlA, &apply, garbage, nil}, http.StatusBadRequest, "not a Terraform state"},
		{"empty body", request{http.MethodPost, urlA, &apply, []byte{}, nil}, http.StatusBadRequest, "empty"},
		{"not JSON", request{http.MethodPost, urlA, &apply, []byte(`resource "x" "y" {}`), nil}, http.StatusBadRequest, "not valid JSON"},
		{"truncated JSON", request{http.MethodPost, urlA, &apply, s2[:len(s2)/2], nil}, http.StatusBadRequest, "not valid JSON"},
		{"JSON that is not a state", request{http.MethodPost, urlA, &apply, []byte(`{"hello":"world"}`), nil}, http.StatusBadRequest, `"version"`},
		{"a JSON array", request{http.MethodPost, urlA, &apply, []byte(`[1,2]`), nil}, http.StatusBadRequest, "array"},
		{"serial as a string", request{http.MethodPost, urlA, &apply, []byte(`{"version":4,"serial":"3","lineage":"` + lineageA + `"}`), nil}, http.StatusBadRequest, "serial"},
		{"no lineage", request{http.MethodPost, urlA, &apply, []byte(`{"version":4,"serial":3}`), nil}, http.StatusBadRequest, "lineage"},
		{"serial regression", request{http.MethodPost, urlA, &apply, stateJSON(1, lineageA, "old"), nil}, http.StatusConflict, "lower than the current serial 2"},
		{"lineage change", request{http.MethodPost, urlA, &apply, stateJSON(3, "other-lineage", "x"), nil}, http.StatusConflict, "lineage"},
		{"Content-MD5 mismatch", request{http.MethodPost, urlA, &apply, stateJSON(3, lineageA, "x"), md5Header([]byte("other"))}, http.StatusBadRequest, "Content-MD5"},
		{"Content-MD5 not base64", request{http.MethodPost, urlA, &apply, stateJSON(3, lineageA, "x"), http.Header{"Content-Md5": {"%%%"}}}, http.StatusBadRequest, "Content-MD5"},
		{"too large", request{http.MethodPost, urlA, &apply, stateJSON(3, lineageA, strings.Repeat("x", 5000)), nil}, http.StatusRequestEntityTooLarge, "limit of 4.0 KiB"},
		{"lock info too large", request{"LOCK", urlA, &apply, []byte(`{"ID":"x","Info":"` + strings.Repeat("x", 17<<10) + `"}`), nil}, http.StatusRequestEntityTooLarge, "lock info too large"},
		{"LOCK without an ID", request{"LOCK", urlA, &apply, []byte(`{"Operation":"x"}`), nil}, http.StatusBadRequest, "ID"},
		{"LOCK with garbage", request{"LOCK", urlA, &apply, garbage, nil}, http.StatusBadRequest, "JSON"},
		{"LOCK with an empty body", request{"LOCK", urlA, &apply, nil, nil}, http.StatusBadRequest, "ID"},
		{"UNLOCK with an ID that is not a string", request{"UNLOCK", urlA, &apply, []byte(`{"ID":7}`), nil}, http.StatusBadRequest, "ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.counts()
			status, body, hdr := e.do(tc.req.method, tc.req.url, tc.req.creds, tc.req.body, tc.req.header)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("status %d %q, want %d with %q", status, body, tc.status, tc.body)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a basic-auth challenge: %v", hdr)
			}
			if strings.Contains(body, apply.Password) {
				t.Error("the answer contains a password")
			}
			if after := e.counts(); after != before {
				t.Errorf("the refused request changed %+v to %+v", before, after)
			}
		})
	}
	// Without a Content-Length (the body is sent chunked) the limit applies
	// while the body is read: the message cannot give the size.
	t.Run("too large, chunked", func(t *testing.T) {
		before := e.counts()
		big := stateJSON(3, lineageA, strings.Repeat("x", 5000))
		req, err := http.NewRequest(http.MethodPost, urlA, io.MultiReader(bytes.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(apply.Username, apply.Password)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "more than the limit of 4.0 KiB") {
			t.Errorf("chunked body over the limit: %d %q", resp.StatusCode, body)
		}
		if after := e.counts(); after != before {
			t.Errorf("changed %+v to %+v", before, after)
		}
	})
	if cur, _ := e.state(stkA).Current(); cur.Serial != 2 || cur.Version != 1 {
		t.Fatalf("current version changed: %+v", cur)
	}
}

// TestStaleLockOfEndedRun: a lock left by a run that has ended is released
// when another run locks, so a crashed run cannot block the stack forever.
func TestStaleLockOfEndedRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	first := e.newRun(stk, run.Tracked, run.Applying)
	c1 := e.mint(stk, first, run.PhaseApplying)
	url := e.stateURL(stk)
	if status, body, _ := e.do("LOCK", url, &c1, lockInfo("lock-1"), nil); status != http.StatusOK {
		t.Fatalf("LOCK: %d %s", status, body)
	}
	second := e.newRun(stk, run.Proposed, run.Planning)
	c2 := e.mint(stk, second, run.PhasePlanning)
	// While the first run is alive its lock holds.
	if status, body, _ := e.do("LOCK", url, &c2, lockInfo("lock-2"), nil); status != http.StatusLocked || !strings.Contains(body, "lock-1") {
		t.Fatalf("LOCK while the holder runs: %d %s", status, body)
	}
	// Nor can the other run force it open.
	if status, _, _ := e.do("UNLOCK", url, &c2, nil, nil); status != http.StatusLocked {
		t.Fatalf("force-unlock by another run: %d", status)
	}
	e.runCommand(first, run.Fail{Note: "worker lost", Actor: scheduler, At: e.runState(first).TriggeredAt()})
	if status, body, _ := e.do("LOCK", url, &c2, lockInfo("lock-2"), nil); status != http.StatusOK {
		t.Fatalf("LOCK after the holder ended: %d %s", status, body)
	}
	evs := e.load(statebackend.StreamOf(stk).ID)
	unlocked, ok := evs[len(evs)-2].(state.StateUnlocked)
	if !ok || unlocked.LockID != "lock-1" || !unlocked.Forced || !strings.Contains(unlocked.Note, first) {
		t.Fatalf("events %#v", evs)
	}
	if h, _ := e.state(stk).Holder(); h.LockID != "lock-2" || h.RunID != second {
		t.Fatalf("holder %+v", h)
	}
}

// TestPhaseAccess checks which phases may read, lock and write.
func TestPhaseAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	cases := []struct {
		typ      run.Type
		phase    run.Phase
		canWrite bool
	}{
		{run.Tracked, run.PhaseInitializing, false},
		{run.Proposed, run.PhasePlanning, false},
		{run.Tracked, run.PhaseApplying, true},
		{run.Task, run.PhasePerforming, true},
	}
	for i, tc := range cases {
		runID := e.newRun(stk, tc.typ, tc.phase.Status())
		c := e.mint(stk, runID, tc.phase)
		url := e.stateURL(stk)
		if status, body, _ := e.do(http.MethodGet, url, &c, nil, nil); status != http.StatusOK && status != http.StatusNoContent {
			t.Errorf("%s GET: %d %s", tc.phase, status, body)
		}
		id := fmt.Sprintf("lock-%d", i)
		if status, body, _ := e.do("LOCK", url, &c, lockInfo(id), nil); status != http.StatusOK {
			t.Errorf("%s LOCK: %d %s", tc.phase, status, body)
		}
		status, body, _ := e.do(http.MethodPost, url+"?ID="+id, &c, stateJSON(i, lineageA, "x"), nil)
		if want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[tc.canWrite]; status != want {
			t.Errorf("%s POST: %d %s, want %d", tc.phase, status, body, want)
		}
		if status, body, _ := e.do("UNLOCK", url, &c, lockInfo(id), nil); status != http.StatusOK {
			t.Errorf("%s UNLOCK: %d %s", tc.phase, status, body)
		}
	}
}

// TestConcurrentWrites races writers on one stack: the expected version makes
// the losers decide again, so versions are numbered without gaps, serials
// never go down, every version's blob matches it, and each refused write is a
// serial conflict.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Task, run.Performing)
	c := e.mint(stk, runID, run.PhasePerforming)
	const writers = 12
	statuses := make([]int, writers)
	bodies := make([]string, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			statuses[i], bodies[i], _ = e.do(http.MethodPost, e.stateURL(stk), &c, stateJSON(i+1, lineageA, fmt.Sprint("writer ", i)), nil)
		})
	}
	wg.Wait()
	accepted := 0
	for i, status := range statuses {
		switch {
		case status == http.StatusOK:
			accepted++
		case status == http.StatusConflict && strings.Contains(bodies[i], "lower than the current serial"):
		default:
			t.Errorf("writer %d: %d %s", i, status, bodies[i])
		}
	}
	vs := e.state(stk).Versions()
	if len(vs) != accepted || accepted == 0 {
		t.Fatalf("%d versions for %d accepted writes", len(vs), accepted)
	}
	for i, v := range vs {
		if v.Version != i+1 || i > 0 && v.Serial < vs[i-1].Serial {
			t.Errorf("version %d: %+v after %+v", i+1, v, vs[max(i-1, 0)])
		}
		data, err := e.objects.ReadEncrypted(e.ctx, v.BlobKey)
		if err != nil || !strings.Contains(string(data), fmt.Sprintf(`"serial": %d,`, v.Serial)) {
			t.Errorf("version %d blob: %v %q", v.Version, err, data)
		}
	}
}

// TestBlobFailureAppendsNothing: the bytes are stored before the event, so a
// storage failure leaves no version that names a missing blob.
func TestBlobFailureAppendsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	// A file where the stack's blob directory must go makes every write fail.
	if err := os.WriteFile(filepath.Join(e.blobs, "state"), []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := e.counts()
	status, body, _ := e.do(http.MethodPost, e.stateURL(stk), &c, stateJSON(1, lineageA, "x"), nil)
	if status != http.StatusInternalServerError || !strings.Contains(body, "internal error (ref ") || strings.Contains(body, e.blobs) {
		t.Fatalf("POST with a failing bucket: %d %q", status, body)
	}
	if after := e.counts(); after.events != before.events {
		t.Fatalf("events %d → %d", before.events, after.events)
	}
	if e.state(stk).HasState() {
		t.Fatal("a version was recorded")
	}
}
