package statebackend_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv"
)

// rawObjects returns every object of the env's bucket as stored.
func (e *env) rawObjects() map[string][]byte {
	e.t.Helper()
	out := map[string][]byte{}
	for key := range e.listKeys() {
		data, err := e.bucket.ReadAll(e.ctx, key)
		if err != nil {
			e.t.Fatal(err)
		}
		out[key] = data
	}
	return out
}

func (e *env) listKeys() map[string]bool {
	e.t.Helper()
	keys := map[string]bool{}
	it := e.bucket.List(nil)
	for {
		obj, err := it.Next(e.ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e.t.Fatal(err)
		}
		keys[obj.Key] = true
	}
	return keys
}

// writeAndRead stores a state file through the http backend, as terraform
// does, checks that the bucket holds only ciphertext, and reads it back.
func writeAndRead(t *testing.T, e *env) {
	t.Helper()
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	file := stateJSON(1, lineageA, "db-password-hunter2")
	if status, body, _ := e.do(http.MethodPost, e.stateURL(stk), &c, file, md5Header(file)); status != http.StatusOK {
		t.Fatalf("POST: %d %s", status, body)
	}
	objects := e.rawObjects()
	if len(objects) != 1 {
		t.Fatalf("%d objects in the bucket, want 1", len(objects))
	}
	for key, data := range objects {
		if !strings.HasPrefix(key, "state/"+stk+"/") {
			t.Errorf("object %s", key)
		}
		for _, clear := range []string{"hunter2", lineageA, `"serial"`} {
			if bytes.Contains(data, []byte(clear)) {
				t.Errorf("the stored object %s shows %q", key, clear)
			}
		}
	}
	status, body, _ := e.do(http.MethodGet, e.stateURL(stk), &c, nil, nil)
	if status != http.StatusOK || body != string(file) {
		t.Fatalf("GET: %d %q", status, body)
	}
}

func TestStateFilesAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	writeAndRead(t, newEnv(t, statebackend.Config{}))
}

// The managed state on an S3-compatible server (GANTRY_BLOB_URL=s3://...).
func TestStateOnS3(t *testing.T) {
	s3 := testenv.S3(t)
	writeAndRead(t, newEnvAt(t, testenv.Postgres(t), s3.NewBucket(t, "gantry-state"), statebackend.Config{}))
}

// A state version stored in clear before encryption at rest is still
// served; a damaged encrypted one never is.
func TestStateFromBeforeEncryptionAndDamagedState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	runID := e.newRun(stk, run.Tracked, run.Applying)
	c := e.mint(stk, runID, run.PhaseApplying)
	file := stateJSON(1, lineageA, "old")
	if status, body, _ := e.do(http.MethodPost, e.stateURL(stk), &c, file, nil); status != http.StatusOK {
		t.Fatalf("POST: %d %s", status, body)
	}
	v := e.state(stk).Versions()[0]
	encrypted, err := e.bucket.ReadAll(e.ctx, v.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.WriteAll(e.ctx, v.BlobKey, file, nil); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(http.MethodGet, e.stateURL(stk), &c, nil, nil); status != http.StatusOK || body != string(file) {
		t.Fatalf("GET of a version stored in clear: %d %q", status, body)
	}

	encrypted[len(encrypted)-1] ^= 1
	if err := e.bucket.WriteAll(e.ctx, v.BlobKey, encrypted, nil); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(http.MethodGet, e.stateURL(stk), &c, nil, nil); status != http.StatusInternalServerError || strings.Contains(body, "old") {
		t.Fatalf("GET of a damaged version: %d %q", status, body)
	}
	if data, _, err := e.svc.Download(e.ctx, stk, 1, alice); err == nil {
		t.Fatalf("download of a damaged version: %q", data)
	}
}
