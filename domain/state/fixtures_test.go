package state

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

const (
	stackID = "stk_01"
	run1    = "run_01"
	run2    = "run_02"
	alice   = "user:alice"
	actor1  = "run:" + run1
	actor2  = "run:" + run2
	lineage = "8a2b4a4e-0000-4000-8000-000000000001"
	other   = "8a2b4a4e-0000-4000-8000-000000000002"
	lockA   = "lock-a"
	lockB   = "lock-b"
	infoA   = `{"ID":"lock-a","Operation":"OperationTypeApply","Who":"w@h"}`
	infoB   = `{"ID":"lock-b","Operation":"OperationTypePlan","Who":"w@h"}`
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func given(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

// hexOf makes a distinct, valid digest of n hex digits from a seed character.
func hexOf(seed byte, n int) string { return strings.Repeat(string(seed), n) }

func content(serial uint64, lin string, seed byte) Content {
	return Content{Serial: serial, Lineage: lin, MD5: hexOf(seed, 32), SHA256: hexOf(seed, 64), Size: 100 + int64(seed), BlobKey: "state/" + stackID + "/" + string(seed)}
}

// written is the event a write of content c as version v by run produces.
func written(v int, c Content, runID string, minute int) StateVersionWritten {
	actor := alice
	kind := KindImport
	if runID != "" {
		actor, kind = "run:"+runID, KindWrite
	}
	return StateVersionWritten{StackID: stackID, Version: v, Serial: c.Serial, Lineage: c.Lineage, MD5: c.MD5, SHA256: c.SHA256,
		Size: c.Size, BlobKey: c.BlobKey, RunID: runID, Kind: kind, At: at(minute), Actor: actor}
}

func lockedBy(lockID, info, runID string, minute int) StateLocked {
	return StateLocked{LockID: lockID, Info: info, RunID: runID, At: at(minute), Actor: "run:" + runID}
}

// decide calls Decide and checks that every event it returns survives the
// event store's JSON encoding.
func decide(t *testing.T, s State, c Command) ([]Event, error) {
	t.Helper()
	events, err := Decide(s, c)
	for _, e := range events {
		eventtest.RoundTrip(t, e)
	}
	return events, err
}

// wantErr describes the error a case expects; nil means success.
type wantErr struct {
	is    error  // errors.Is target
	field string // for ErrInvalid: a ValidationError naming this field
	as    func(error) bool
}

func checkErr(t *testing.T, err error, want *wantErr) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want.is)
	}
	if !errors.Is(err, want.is) {
		t.Fatalf("error %v, want %v", err, want.is)
	}
	if want.field != "" && !hasField(err, want.field) {
		t.Errorf("error %v does not name field %q", err, want.field)
	}
	if want.as != nil && !want.as(err) {
		t.Errorf("error %v (%T) does not carry what the case expects", err, err)
	}
}

// hasField reports whether err, or one of the errors it joins, is a
// ValidationError naming field.
func hasField(err error, field string) bool {
	var ve *domain.ValidationError
	if errors.As(err, &ve) && ve.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasField(e, field) {
				return true
			}
		}
	}
	return false
}

func invalid(field string) *wantErr { return &wantErr{is: domain.ErrInvalid, field: field} }

// lockedBy… errors carry the holder's lock id and info.
func lockedErr(lockID, info string) *wantErr {
	return &wantErr{is: ErrLocked, as: func(err error) bool {
		var le *LockedError
		return errors.As(err, &le) && le.Holder.LockID == lockID && le.Holder.Info == info
	}}
}

func serialErr(current, proposed uint64) *wantErr {
	return &wantErr{is: ErrConflict, as: func(err error) bool {
		var se *SerialError
		return errors.As(err, &se) && se.Current == current && se.Proposed == proposed && strings.Contains(se.Error(), "lower than the current serial")
	}}
}

func lineageErr(current, proposed string) *wantErr {
	return &wantErr{is: ErrConflict, as: func(err error) bool {
		var le *LineageError
		return errors.As(err, &le) && le.Current == current && le.Proposed == proposed
	}}
}

func notAllowed(reason string) *wantErr {
	return &wantErr{is: ErrNotAllowed, as: func(err error) bool {
		var na *NotAllowedError
		return errors.As(err, &na) && strings.Contains(na.Reason, reason)
	}}
}
