package statebackend

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/state"
)

// PathPrefix is where Handler serves: each stack's state is at
// PathPrefix + <stack id>. Mount the handler on this prefix.
const PathPrefix = "/state/"

// allowedMethods is the Allow header of a 405.
const allowedMethods = "GET, POST, DELETE, LOCK, UNLOCK"

// realm names the basic-auth realm in WWW-Authenticate.
const realm = `Basic realm="gantry state", charset="UTF-8"`

// methodAccess says which access each method of the protocol needs.
var methodAccess = map[string]Access{
	http.MethodGet:    AccessRead,
	"LOCK":            AccessRead,
	"UNLOCK":          AccessRead,
	http.MethodPost:   AccessReadWrite,
	http.MethodDelete: AccessReadWrite,
}

// Handler serves Terraform's http backend protocol under PathPrefix:
//
//	GET    200 with the current state, 204 when there is none
//	POST   store a new version (?ID= names the lock held); 409 for a serial
//	       regression or a lineage change
//	DELETE delete the current state
//	LOCK   take the lock (body: lock info JSON); 423 with the holder's lock
//	       info when it is held
//	UNLOCK release the lock (body: the lock info; empty, as terraform
//	       force-unlock sends it, for a forced release by the run holding it)
//
// Every request needs basic-auth credentials from Mint, of this stack, whose
// run is still in the phase they were minted for (401 without valid
// credentials, 403 otherwise).
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// forbiddenError: valid credentials that do not allow this request.
type forbiddenError struct{ reason string }

func (e *forbiddenError) Error() string { return "forbidden: " + e.reason }

// badRequestError: a request the protocol does not allow.
type badRequestError struct{ reason string }

func (e *badRequestError) Error() string { return e.reason }

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	stackID, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || ids.Stack.Validate("stack_id", stackID) != nil || len(StreamOf(stackID).ID) > ids.MaxLength {
		http.NotFound(w, r)
		return
	}
	need, ok := methodAccess[r.Method]
	if !ok {
		w.Header().Set("Allow", allowedMethods)
		http.Error(w, "method not allowed: the state backend speaks "+allowedMethods, http.StatusMethodNotAllowed)
		return
	}
	creds, err := s.authorize(r, stackID, need)
	if err != nil {
		s.fail(w, r, stackID, creds.RunID, err)
		return
	}
	ctx := withActor(r.Context(), runActor(creds.RunID), creds.RunID)
	switch r.Method {
	case http.MethodGet:
		err = s.get(ctx, w, stackID)
	case http.MethodPost:
		err = s.post(ctx, w, r, stackID, creds.RunID)
	case http.MethodDelete:
		err = s.delete(ctx, r, stackID, creds.RunID)
	case "LOCK":
		err = s.lock(ctx, w, r, stackID, creds.RunID)
	case "UNLOCK":
		err = s.unlock(ctx, w, r, stackID, creds.RunID)
	}
	if err != nil {
		s.fail(w, r, stackID, creds.RunID, err)
	}
}

// authorize checks the request's credentials against the stack and against
// the run's current status, loaded from the event store. The returned
// credentials name the run even when access is refused, for the log.
func (s *Service) authorize(r *http.Request, stackID string, need Access) (Credentials, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return Credentials{}, errUnauthenticated
	}
	c, err := s.authenticate(r.Context(), user, pass)
	if err != nil {
		return Credentials{}, err
	}
	if c.StackID != stackID {
		return c, &forbiddenError{reason: fmt.Sprintf("these credentials are for stack %s, not %s", c.StackID, stackID)}
	}
	rn, err := s.loadRun(r.Context(), c.RunID)
	if err != nil {
		return c, err
	}
	if rn.Status() != c.Phase.Status() {
		return c, &forbiddenError{reason: fmt.Sprintf("run %s is %s: credentials minted for %s are no longer valid", c.RunID, rn.Status(), c.Phase)}
	}
	if need == AccessReadWrite && c.Access != AccessReadWrite {
		return c, &forbiddenError{reason: fmt.Sprintf("credentials of run %s for %s may read the state but not change it", c.RunID, c.Phase)}
	}
	return c, nil
}

func (s *Service) get(ctx context.Context, w http.ResponseWriter, stackID string) error {
	st, err := s.load(ctx, stackID)
	if err != nil {
		return err
	}
	cur, ok := st.Current()
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	data, err := s.readVersion(ctx, cur)
	if err != nil {
		return err
	}
	sum, err := hex.DecodeString(cur.MD5)
	if err != nil {
		return fmt.Errorf("state version %d: md5 %q: %w", cur.Version, cur.MD5, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data) // the client went away; nothing to do
	return nil
}

func (s *Service) post(ctx context.Context, w http.ResponseWriter, r *http.Request, stackID, runID string) error {
	data, err := readBody(w, r, "state file", s.cfg.MaxStateSize)
	if err != nil {
		return err
	}
	f, err := parseState(data)
	// Damage in transit explains a bad body best: check the MD5 first.
	if err := checkContentMD5(r, f.md5); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	lockID := r.URL.Query().Get("ID")
	_, err = s.update(ctx, stackID, func(_ context.Context, a *stateAggregate) (*pendingBlob, error) {
		key := blobKey(stackID, a.State().NextVersion(), hex.EncodeToString(f.sha256[:]))
		events, err := a.Do(state.Write{StackID: stackID, Content: f.content(key), RunID: runID, LockID: lockID,
			Actor: runActor(runID), At: s.now()})
		if err != nil || len(events) == 0 {
			return nil, err
		}
		return &pendingBlob{key: key, data: data}, nil
	})
	return err
}

func (s *Service) delete(ctx context.Context, r *http.Request, stackID, runID string) error {
	_, err := s.update(ctx, stackID, func(_ context.Context, a *stateAggregate) (*pendingBlob, error) {
		_, err := a.Do(state.Delete{LockID: r.URL.Query().Get("ID"), RunID: runID, Actor: runActor(runID), At: s.now()})
		return nil, err
	})
	return err
}

func (s *Service) lock(ctx context.Context, w http.ResponseWriter, r *http.Request, stackID, runID string) error {
	info, lockID, err := readLockInfo(w, r)
	if err != nil {
		return err
	}
	if lockID == "" {
		return &badRequestError{reason: `lock info must have a non-empty "ID"`}
	}
	_, err = s.update(ctx, stackID, func(ctx context.Context, a *stateAggregate) (*pendingBlob, error) {
		cmd := state.Lock{LockID: lockID, Info: string(info), RunID: runID, Actor: runActor(runID), At: s.now()}
		if h, ok := a.State().Holder(); ok && h.RunID != "" && h.RunID != runID {
			// A lock whose run has ended is stale: nobody will release it.
			holder, err := s.loadRun(ctx, h.RunID)
			if err != nil {
				return nil, err
			}
			if holder.IsTerminal() {
				cmd.EndedRunID = h.RunID
			}
		}
		_, err := a.Do(cmd)
		return nil, err
	})
	return err
}

func (s *Service) unlock(ctx context.Context, w http.ResponseWriter, r *http.Request, stackID, runID string) error {
	info, lockID, err := readLockInfo(w, r)
	if err != nil {
		return err
	}
	if len(info) > 0 && lockID == "" {
		return &badRequestError{reason: `lock info must have a non-empty "ID", or the body must be empty to force the unlock`}
	}
	_, err = s.update(ctx, stackID, func(_ context.Context, a *stateAggregate) (*pendingBlob, error) {
		_, err := a.Do(state.Unlock{LockID: lockID, RunID: runID, Actor: runActor(runID), At: s.now()})
		return nil, err
	})
	return err
}

// readLockInfo reads a LOCK or UNLOCK body: empty, or a lock info JSON object
// whose "ID" it returns.
func readLockInfo(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	body, err := readBody(w, r, "lock info", state.MaxLockInfoLength)
	if err != nil {
		return nil, "", err
	}
	if err := checkContentMD5(r, md5.Sum(body)); err != nil {
		return nil, "", err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, "", nil
	}
	var li struct {
		ID any `json:"ID"`
	}
	if err := json.Unmarshal(body, &li); err != nil {
		return nil, "", &badRequestError{reason: "lock info must be a JSON object: " + err.Error()}
	}
	id, ok := li.ID.(string)
	if li.ID != nil && !ok {
		return nil, "", &badRequestError{reason: `lock info "ID" must be a string`}
	}
	return body, id, nil
}

// readBody reads at most max bytes of the request body, which holds what.
func readBody(w http.ResponseWriter, r *http.Request, what string, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, &TooLargeError{What: what, Size: r.ContentLength, Max: max}
	}
	body := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength >= 0 {
		// The length is known: one allocation of the right size.
		data := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, &badRequestError{reason: "read request body: " + err.Error()}
		}
		return data, nil
	}
	data, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &TooLargeError{What: what, Size: -1, Max: max}
	}
	if err != nil {
		return nil, &badRequestError{reason: "read request body: " + err.Error()}
	}
	return data, nil
}

// checkContentMD5 compares a Content-MD5 header, when there is one, with the
// body's digest.
func checkContentMD5(r *http.Request, sum [md5.Size]byte) error {
	v := r.Header.Get("Content-MD5")
	if v == "" {
		return nil
	}
	want, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(want) != md5.Size {
		return &badRequestError{reason: "Content-MD5 must be the base64 of a 16-byte MD5 digest"}
	}
	if string(want) != string(sum[:]) {
		return &badRequestError{reason: fmt.Sprintf("Content-MD5 %s does not match the body (MD5 %s): the body was damaged in transit", v, base64.StdEncoding.EncodeToString(sum[:]))}
	}
	return nil
}

// fail answers a refused or failed request; it is the one place where errors
// become status codes. Internal errors get a generic message with a
// reference; the detail goes to the log only.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, stackID, runID string, err error) {
	var (
		locked    *state.LockedError
		forbidden *forbiddenError
		bad       *badRequestError
	)
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errUnauthenticated):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", realm)
	case errors.As(err, &forbidden):
		status = http.StatusForbidden
	case errors.As(err, &locked):
		// Terraform shows the holder's lock info from the body.
		s.log.Debug("state locked", "stack_id", stackID, "run_id", runID, "method", r.Method, "holder", locked.Holder.LockID)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusLocked)
		_, _ = io.WriteString(w, locked.Holder.Info)
		return
	case errors.Is(err, ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, state.ErrConflict):
		status = http.StatusConflict
	case errors.As(err, &bad), errors.Is(err, domain.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is stopping): no one reads this.
		s.log.Debug("state request canceled", "stack_id", stackID, "run_id", runID, "method", r.Method)
		http.Error(w, "request canceled", http.StatusServiceUnavailable)
		return
	}
	if status == http.StatusInternalServerError {
		ref := uuid.NewString()
		s.log.Error("state request failed", "stack_id", stackID, "run_id", runID, "method", r.Method, "err", err, "ref", ref)
		http.Error(w, "internal error (ref "+ref+")", status)
		return
	}
	s.log.Info("state request refused", "stack_id", stackID, "run_id", runID, "method", r.Method, "status", status, "reason", err.Error())
	http.Error(w, err.Error(), status)
}

// runActor is the actor of events a run's terraform causes.
func runActor(runID string) string { return "run:" + runID }
