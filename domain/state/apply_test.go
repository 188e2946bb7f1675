package state

import (
	"reflect"
	"testing"

	"github.com/gantryhq/gantry/domain/eventtest"
)

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "State", Events())
}

func TestApply(t *testing.T) {
	c1, c2 := content(1, lineage, 'a'), content(2, lineage, 'b')
	s := given()
	if s.HasState() || s.NextVersion() != 1 || len(s.Versions()) != 0 {
		t.Fatalf("zero state: has=%v next=%d versions=%d", s.HasState(), s.NextVersion(), len(s.Versions()))
	}
	if _, ok := s.Current(); ok {
		t.Fatal("zero state has a current version")
	}

	s = given(written(1, c1, run1, 1), written(2, c2, run1, 2))
	cur, ok := s.Current()
	if !ok || cur.Version != 2 || cur.Serial != 2 || cur.SHA256 != c2.SHA256 || cur.RunID != run1 || cur.Kind != KindWrite || !cur.At.Equal(at(2)) {
		t.Fatalf("current = %+v, %v", cur, ok)
	}
	if v, ok := s.VersionAt(1); !ok || v.BlobKey != c1.BlobKey || v.Size != c1.Size || v.MD5 != c1.MD5 || v.Lineage != lineage {
		t.Fatalf("version 1 = %+v, %v", v, ok)
	}
	for _, n := range []int{0, 3, -1} {
		if _, ok := s.VersionAt(n); ok {
			t.Errorf("VersionAt(%d) exists", n)
		}
	}
	if s.NextVersion() != 3 {
		t.Fatalf("next version %d", s.NextVersion())
	}

	// Copies are independent: applying to one does not show in the other.
	copyOf := s
	copyOf.Apply(written(3, content(3, lineage, 'c'), run2, 3))
	s.Apply(written(3, content(3, lineage, 'd'), run2, 3))
	if v, _ := copyOf.VersionAt(3); v.SHA256 != hexOf('c', 64) {
		t.Fatalf("copy's version 3 was overwritten: %+v", v)
	}

	s.Apply(&StateLocked{LockID: lockA, Info: infoA, RunID: run1, At: at(4), Actor: actor1}) // by pointer
	h, ok := s.Holder()
	if !ok || !reflect.DeepEqual(h, Holder{LockID: lockA, Info: infoA, RunID: run1, At: at(4), Actor: actor1}) {
		t.Fatalf("holder = %+v, %v", h, ok)
	}
	s.Apply(StateUnlocked{LockID: lockA, At: at(5), Actor: actor1})
	if _, ok := s.Holder(); ok {
		t.Fatal("still locked after StateUnlocked")
	}

	s.Apply(StateDeleted{At: at(6), Actor: actor1})
	if s.HasState() || len(s.Versions()) != 3 || s.NextVersion() != 4 {
		t.Fatalf("after delete: has=%v versions=%d next=%d", s.HasState(), len(s.Versions()), s.NextVersion())
	}
	s.Apply(StateDownloaded{Version: 1, At: at(7), Actor: alice})
	s.Apply(StateVersionWritten{StackID: stackID, Version: 4, Serial: 1, Lineage: lineage, MD5: c1.MD5, SHA256: c1.SHA256,
		Size: c1.Size, BlobKey: "k4", Kind: KindRollback, RolledBackFrom: 1, At: at(8), Actor: alice})
	if cur, ok := s.Current(); !ok || cur.Version != 4 || cur.RolledBackFrom != 1 || cur.Kind != KindRollback || cur.Actor != alice {
		t.Fatalf("after rollback current = %+v", cur)
	}
}
