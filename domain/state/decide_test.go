package state

import (
	"reflect"
	"testing"

	"github.com/gantryhq/gantry/domain"
)

type unknownCommand struct{ Command }

func TestDecide(t *testing.T) {
	c1 := content(1, lineage, 'a')
	c2 := content(2, lineage, 'b')
	v1 := written(1, c1, run1, 1)
	v2 := written(2, c2, run1, 2)
	lockA1 := lockedBy(lockA, infoA, run1, 3)
	deleted := StateDeleted{RunID: run1, At: at(4), Actor: actor1}
	hasTwo := []Event{v1, v2}
	hasTwoLocked := []Event{v1, v2, lockA1}

	write := func(c Content, lockID, runID string) Write {
		return Write{StackID: stackID, Content: c, RunID: runID, LockID: lockID, Actor: "run:" + runID, At: at(10)}
	}
	withMod := func(c Content, mod func(*Content)) Content { mod(&c); return c }
	wrote := func(v int, c Content, runID string) StateVersionWritten { return written(v, c, runID, 10) }
	imp := func(c Content) Import { return Import{StackID: stackID, Content: c, Actor: alice, At: at(10)} }
	imported := func(v int, c Content) StateVersionWritten { return written(v, c, "", 10) }
	rollback := func(to int, mod func(*Rollback)) Rollback {
		r := Rollback{StackID: stackID, ToVersion: to, BlobKey: "state/stk_01/3-aaaa", HoldsStackLock: true, Actor: alice, At: at(10)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	rolledBack := func(v int, from Content, fromVersion int) StateVersionWritten {
		return StateVersionWritten{StackID: stackID, Version: v, Serial: from.Serial, Lineage: from.Lineage, MD5: from.MD5,
			SHA256: from.SHA256, Size: from.Size, BlobKey: "state/stk_01/3-aaaa", Kind: KindRollback, RolledBackFrom: fromVersion,
			At: at(10), Actor: alice}
	}
	lock := func(lockID, info, runID, ended string) Lock {
		return Lock{LockID: lockID, Info: info, RunID: runID, EndedRunID: ended, Actor: "run:" + runID, At: at(10)}
	}
	unlock := func(lockID, runID string, admin bool) Unlock {
		actor := "run:" + runID
		if admin {
			actor = alice
		}
		return Unlock{LockID: lockID, RunID: runID, Admin: admin, Actor: actor, At: at(10)}
	}
	unlocked := func(lockID string, forced bool, actor string) StateUnlocked {
		return StateUnlocked{LockID: lockID, Forced: forced, At: at(10), Actor: actor}
	}
	del := func(lockID, runID string) Delete {
		return Delete{LockID: lockID, RunID: runID, Actor: "run:" + runID, At: at(10)}
	}
	notFound := &wantErr{is: domain.ErrNotFound}

	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   *wantErr
	}{
		// Write
		{"first write", nil, write(c1, "", run1), []Event{wrote(1, c1, run1)}, nil},
		{"higher serial", []Event{v1}, write(c2, "", run1), []Event{wrote(2, c2, run1)}, nil},
		{"equal serial, new content", hasTwo, write(content(2, lineage, 'c'), "", run2), []Event{wrote(3, content(2, lineage, 'c'), run2)}, nil},
		{"lower serial is refused", hasTwo, write(content(1, lineage, 'c'), "", run1), nil, serialErr(2, 1)},
		{"other lineage is refused", hasTwo, write(content(3, other, 'c'), "", run1), nil, lineageErr(lineage, other)},
		{"other lineage with lower serial names the lineage", hasTwo, write(content(0, other, 'c'), "", run1), nil, lineageErr(lineage, other)},
		{"identical bytes again change nothing", hasTwo, write(c2, "", run1), nil, nil},
		{"locked: write with the holder's id", hasTwoLocked, write(content(3, lineage, 'c'), lockA, run1), []Event{wrote(3, content(3, lineage, 'c'), run1)}, nil},
		{"locked: write without an id", hasTwoLocked, write(content(3, lineage, 'c'), "", run1), nil, lockedErr(lockA, infoA)},
		{"locked: write with another id", hasTwoLocked, write(content(3, lineage, 'c'), lockB, run1), nil, lockedErr(lockA, infoA)},
		{"locked: the holder's id from another run", hasTwoLocked, write(content(3, lineage, 'c'), lockA, run2), nil, lockedErr(lockA, infoA)},
		{"unlocked: write naming a lock", hasTwo, write(content(3, lineage, 'c'), lockA, run1), nil, &wantErr{is: ErrConflict}},
		{"after delete any lineage starts over", []Event{v1, v2, deleted}, write(content(0, other, 'c'), "", run2), []Event{wrote(3, content(0, other, 'c'), run2)}, nil},
		{"write needs a run", nil, write(c1, "", ""), nil, invalid("run_id")},
		{"write needs a stack id", nil, Write{StackID: "run_x", Content: c1, RunID: run1, Actor: actor1, At: at(1)}, nil, invalid("stack_id")},
		{"bad md5", nil, write(withMod(c1, func(c *Content) { c.MD5 = "xyz" }), "", run1), nil, invalid("md5")},
		{"upper-case sha256", nil, write(withMod(c1, func(c *Content) { c.SHA256 = hexOf('A', 64) }), "", run1), nil, invalid("sha256")},
		{"empty lineage", nil, write(withMod(c1, func(c *Content) { c.Lineage = "" }), "", run1), nil, invalid("lineage")},
		{"empty size", nil, write(withMod(c1, func(c *Content) { c.Size = 0 }), "", run1), nil, invalid("size")},
		{"no blob key", nil, write(withMod(c1, func(c *Content) { c.BlobKey = "" }), "", run1), nil, invalid("blob_key")},
		{"write needs an origin", nil, Write{StackID: stackID, Content: c1, RunID: run1}, nil, invalid("actor")},

		// Import
		{"import into no state", nil, imp(c1), []Event{imported(1, c1)}, nil},
		{"import over a state", []Event{v1}, imp(c2), nil, &wantErr{is: domain.ErrAlreadyExists}},
		{"import after delete", []Event{v1, v2, deleted}, imp(content(5, other, 'c')), []Event{imported(3, content(5, other, 'c'))}, nil},
		{"import while locked", []Event{lockA1}, imp(c1), nil, lockedErr(lockA, infoA)},
		{"import with a bad digest", nil, imp(withMod(c1, func(c *Content) { c.SHA256 = "" })), nil, invalid("sha256")},

		// Rollback
		{"rollback to version 1", hasTwo, rollback(1, nil), []Event{rolledBack(3, c1, 1)}, nil},
		{"rollback without the stack lock", hasTwo, rollback(1, func(r *Rollback) { r.HoldsStackLock = false }), nil, notAllowed("lock the stack")},
		{"rollback while a run is in progress", hasTwo, rollback(1, func(r *Rollback) { r.RunInProgress = true }), nil, notAllowed("run is in progress")},
		{"rollback while the state is locked", hasTwoLocked, rollback(1, nil), nil, lockedErr(lockA, infoA)},
		{"rollback to an unknown version", hasTwo, rollback(7, nil), nil, notFound},
		{"rollback to the current version", hasTwo, rollback(2, nil), nil, invalid("version")},
		{"rollback after delete restores", []Event{v1, v2, deleted}, rollback(2, nil), []Event{rolledBack(3, c2, 2)}, nil},
		{"rollback to version 0", hasTwo, rollback(0, nil), nil, invalid("version")},
		{"rollback needs a blob key", hasTwo, rollback(1, func(r *Rollback) { r.BlobKey = "" }), nil, invalid("blob_key")},

		// Lock
		{"lock", hasTwo, lock(lockA, infoA, run1, ""), []Event{StateLocked{LockID: lockA, Info: infoA, RunID: run1, At: at(10), Actor: actor1}}, nil},
		{"lock an empty state", nil, lock(lockA, infoA, run1, ""), []Event{StateLocked{LockID: lockA, Info: infoA, RunID: run1, At: at(10), Actor: actor1}}, nil},
		{"lock held by another lock", hasTwoLocked, lock(lockB, infoB, run1, ""), nil, lockedErr(lockA, infoA)},
		{"lock again (a retry)", hasTwoLocked, lock(lockA, infoA, run1, ""), nil, nil},
		{"same lock id from another run", hasTwoLocked, lock(lockA, infoA, run2, ""), nil, lockedErr(lockA, infoA)},
		{"lock held by an ended run is released", hasTwoLocked, lock(lockB, infoB, run2, run1), []Event{
			StateUnlocked{LockID: lockA, Forced: true, Note: "run run_01 that held the lock has ended", At: at(10), Actor: actor2},
			StateLocked{LockID: lockB, Info: infoB, RunID: run2, At: at(10), Actor: actor2},
		}, nil},
		{"an ended run that is not the holder", hasTwoLocked, lock(lockB, infoB, run2, "run_03"), nil, lockedErr(lockA, infoA)},
		{"lock info must be JSON", nil, lock(lockA, "not json", run1, ""), nil, invalid("info")},
		{"lock info must be an object", nil, lock(lockA, `["x"]`, run1, ""), nil, invalid("info")},
		{"lock info is bounded", nil, lock(lockA, `{"x":"`+hexOf('a', MaxLockInfoLength)+`"}`, run1, ""), nil, invalid("info")},
		{"lock needs an id", nil, lock("", infoA, run1, ""), nil, invalid("lock_id")},
		{"lock by a bad run id", nil, lock(lockA, infoA, "stk_1", ""), nil, invalid("run_id")},

		// Unlock
		{"unlock when not locked", hasTwo, unlock(lockA, run1, false), nil, nil},
		{"unlock with the holder's id", hasTwoLocked, unlock(lockA, run1, false), []Event{unlocked(lockA, false, actor1)}, nil},
		{"unlock with another id", hasTwoLocked, unlock(lockB, run1, false), nil, lockedErr(lockA, infoA)},
		{"force-unlock (no id) by the holding run", hasTwoLocked, unlock("", run1, false), []Event{unlocked(lockA, true, actor1)}, nil},
		{"force-unlock by another run", hasTwoLocked, unlock("", run2, false), nil, lockedErr(lockA, infoA)},
		{"the holder's id from another run", hasTwoLocked, unlock(lockA, run2, false), nil, lockedErr(lockA, infoA)},
		{"force-unlock by an administrator", hasTwoLocked, unlock("", "", true), []Event{unlocked(lockA, true, alice)}, nil},
		{"an administrator with a wrong id", hasTwoLocked, unlock(lockB, "", true), nil, lockedErr(lockA, infoA)},
		{"force-unlock of a lock no run took", []Event{StateLocked{LockID: lockA, Info: infoA, At: at(1), Actor: alice}}, unlock("", run1, false), nil, lockedErr(lockA, infoA)},
		{"unlock needs an origin", hasTwoLocked, Unlock{LockID: lockA, RunID: run1}, nil, invalid("at")},

		// Delete
		{"delete", hasTwo, del("", run1), []Event{StateDeleted{RunID: run1, At: at(10), Actor: actor1}}, nil},
		{"delete without a state", nil, del("", run1), nil, nil},
		{"delete by the lock's run", hasTwoLocked, del("", run1), []Event{StateDeleted{RunID: run1, At: at(10), Actor: actor1}}, nil},
		{"delete while another run holds the lock", hasTwoLocked, del("", run2), nil, lockedErr(lockA, infoA)},
		{"delete with another lock id", hasTwoLocked, del(lockB, run1), nil, lockedErr(lockA, infoA)},

		// RecordDownload
		{"download", hasTwo, RecordDownload{Version: 1, Actor: alice, At: at(10)}, []Event{StateDownloaded{Version: 1, At: at(10), Actor: alice}}, nil},
		{"download a deleted state's version", []Event{v1, deleted}, RecordDownload{Version: 1, Actor: alice, At: at(10)}, []Event{StateDownloaded{Version: 1, At: at(10), Actor: alice}}, nil},
		{"download an unknown version", hasTwo, RecordDownload{Version: 3, Actor: alice, At: at(10)}, nil, notFound},
		{"download version 0", hasTwo, RecordDownload{Version: 0, Actor: alice, At: at(10)}, nil, invalid("version")},

		{"unknown command", nil, unknownCommand{}, nil, invalid("command")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := given(tc.given...)
			before := s.Versions()
			got, err := decide(t, s, tc.cmd)
			checkErr(t, err, tc.err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events:\n got  %#v\n want %#v", got, tc.want)
			}
			if !reflect.DeepEqual(s.Versions(), before) {
				t.Error("Decide modified the state")
			}
		})
	}
}

// TestDecideByPointer checks that commands passed by pointer are decided as
// their values.
func TestDecideByPointer(t *testing.T) {
	c := Write{StackID: stackID, Content: content(1, lineage, 'a'), RunID: run1, Actor: actor1, At: at(1)}
	got, err := Decide(State{}, &c)
	if err != nil || len(got) != 1 {
		t.Fatalf("Decide(&Write) = %v, %v", got, err)
	}
}
