package statebackend_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/services/server/statebackend"
)

const fuzzLineage = "f022f022-0000-4000-8000-000000000000"

// statusesAllowed are the answers any request may get. A 500 would mean the
// handler failed on its input.
var statusesAllowed = map[int]bool{200: true, 204: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 423: true}

// FuzzHandler sends arbitrary requests through the full handler (real
// database, real bucket) and checks after each one that the answer is one
// the protocol allows, that no stored version changed, that every version's
// bytes match its checksum, and that an accepted POST is exactly what GET
// serves. The seed corpus is in testdata/fuzz/FuzzHandler; a plain go test
// runs the seeds.
//
// Parameters: method, target (the path after /state/; empty means the test
// stack), raw query, body, Content-MD5 header, and which credentials to send
// (0 applying, 1 planning, 2 none, 3 wrong password, 4 another stack's).
func FuzzHandler(f *testing.F) {
	f.Add("GET", "", "", []byte(nil), "", byte(0))
	f.Add("POST", "", "", stateJSON(2, fuzzLineage, "two"), "", byte(0))
	f.Add("LOCK", "", "", lockInfo("fuzz-lock"), "", byte(0))
	f.Add("UNLOCK", "", "", []byte(nil), "", byte(0))

	e := newEnv(f, statebackend.Config{MaxStateSize: 64 << 10})
	stk, other := e.createStack(true), e.createStack(true)
	applying := e.newRun(stk, run.Tracked, run.Applying)
	rw := e.mint(stk, applying, run.PhaseApplying)
	ro := e.mint(stk, e.newRun(stk, run.Proposed, run.Planning), run.PhasePlanning)
	otherCreds := e.mint(other, e.newRun(other, run.Tracked, run.Applying), run.PhaseApplying)
	wrong := rw
	wrong.Password = "wrong"
	creds := []*statebackend.Credentials{&rw, &ro, nil, &wrong, &otherCreds}
	handler := e.svc.Handler()
	serve := func(method, target, query string, body []byte, header http.Header, c *statebackend.Credentials) (*httptest.ResponseRecorder, bool) {
		u := "http://gantry.test" + statebackend.PathPrefix + target
		if query != "" {
			u += "?" + query
		}
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			return nil, false // no client can send it
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		if c != nil {
			req.SetBasicAuth(c.Username, c.Password)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec, true
	}
	if rec, _ := serve("POST", stk, "", stateJSON(1, fuzzLineage, "one"), nil, &rw); rec.Code != http.StatusOK {
		f.Fatalf("setup POST: %d %s", rec.Code, rec.Body)
	}
	seen := e.state(stk).Versions()
	verified := map[int]bool{}

	f.Fuzz(func(t *testing.T, method, target, query string, body []byte, contentMD5 string, who byte) {
		if target == "" {
			target = stk
		}
		var header http.Header
		if contentMD5 != "" {
			header = http.Header{"Content-Md5": {contentMD5}}
		}
		rec, ok := serve(method, target, query, body, header, creds[int(who)%len(creds)])
		if !ok {
			return
		}
		if !statusesAllowed[rec.Code] {
			t.Fatalf("%s %s?%s: status %d %q", method, target, query, rec.Code, rec.Body)
		}

		// (env's helpers belong to f; inside the target only t may be used.)
		st, err := e.svc.State(e.ctx, stk)
		if err != nil {
			t.Fatal(err)
		}
		versions := st.Versions()
		if len(versions) < len(seen) || !reflect.DeepEqual(versions[:len(seen)], seen) {
			t.Fatalf("stored versions changed:\n was %+v\n now %+v", seen, versions)
		}
		for _, v := range versions {
			if !verified[v.Version] {
				checkBlob(t, e, v)
				verified[v.Version] = true
			}
		}
		seen = versions

		get, _ := serve("GET", stk, "", nil, nil, &rw)
		cur, has := st.Current()
		switch {
		case !has && get.Code != http.StatusNoContent:
			t.Fatalf("GET without a current version: %d", get.Code)
		case has && get.Code != http.StatusOK:
			t.Fatalf("GET: %d %s", get.Code, get.Body)
		case has:
			sum := sha256.Sum256(get.Body.Bytes())
			if hex.EncodeToString(sum[:]) != cur.SHA256 {
				t.Fatalf("GET serves bytes that are not version %d", cur.Version)
			}
		}
		if method == http.MethodPost && target == stk && rec.Code == http.StatusOK && !bytes.Equal(get.Body.Bytes(), body) {
			t.Fatalf("an accepted POST is not what GET serves")
		}
		// Leave the next input an unlocked state to write to.
		if _, locked := st.Holder(); locked {
			if err := e.svc.ForceUnlock(e.ctx, stk, "user:fuzz"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// checkBlob reads a version's bytes straight from the bucket (decrypted) and compares
// them with the checksum and size its event recorded.
func checkBlob(t *testing.T, e *env, v state.Version) {
	t.Helper()
	data, err := e.objects.ReadEncrypted(e.ctx, v.BlobKey)
	if err != nil {
		t.Fatalf("version %d: %v", v.Version, err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != v.SHA256 || int64(len(data)) != v.Size {
		t.Fatalf("version %d: blob %s does not match its event", v.Version, v.BlobKey)
	}
}
